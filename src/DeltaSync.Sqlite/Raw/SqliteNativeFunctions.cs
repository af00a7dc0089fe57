using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace DeltaSync.Sqlite.Raw;

/// <summary>
/// SQL functions implemented in .NET and called by SQLite once per row of a set-wise statement, without SQLitePCL's
/// per-call wrapping (an argument array and a wrapper object per value, a full P/Invoke transition per value read):
/// the callback gets SQLite's own pointers, and the value accessors — small functions that neither block nor call
/// back — run without a GC transition. Bound to the same <c>e_sqlite3</c> library Microsoft.Data.Sqlite loads.
/// </summary>
internal static unsafe partial class SqliteNativeFunctions
{
    private const string Library = "e_sqlite3";
    private const int Utf8 = 1;
    private const nint Transient = -1;

    /// <summary>SQLite's storage classes, as <see cref="ValueType"/> returns them.</summary>
    public const int Integer = 1;

    /// <inheritdoc cref="Integer"/>
    public const int Float = 2;

    /// <inheritdoc cref="Integer"/>
    public const int Text = 3;

    /// <inheritdoc cref="Integer"/>
    public const int Blob = 4;

    /// <inheritdoc cref="Integer"/>
    public const int Null = 5;

    /// <summary>
    /// Registers <paramref name="function"/> as <paramref name="name"/>(<paramref name="arguments"/> values) on the
    /// connection. <paramref name="state"/> is handed to every call (<see cref="State{T}"/>); keep the returned handle
    /// until the function is removed (<see cref="Remove"/>), then free it.
    /// </summary>
    public static GCHandle Register(SQLitePCL.sqlite3 db, string name, int arguments, object state, delegate* unmanaged[Cdecl]<nint, int, nint*, void> function)
    {
        var handle = GCHandle.Alloc(state);
        var rc = CreateFunction(db.DangerousGetHandle(), name, arguments, Utf8, GCHandle.ToIntPtr(handle), function, null, null, null);
        if (rc != 0)
        {
            handle.Free();
            throw new SqliteRawException(rc, SQLitePCL.raw.sqlite3_errmsg(db).utf8_to_string(), null);
        }

        return handle;
    }

    /// <summary>Removes a function registered with <see cref="Register"/>; false when SQLite refused (a statement still runs).</summary>
    public static bool Remove(SQLitePCL.sqlite3 db, string name, int arguments) =>
        CreateFunction(db.DangerousGetHandle(), name, arguments, Utf8, 0, null, null, null, null) == 0;

    /// <summary>The state object given to <see cref="Register"/>.</summary>
    public static T State<T>(nint context)
        where T : class =>
        (T)GCHandle.FromIntPtr(UserData(context)).Target!;

    /// <summary>The bytes of a text or blob value (text as stored, UTF-8), valid until the call returns.</summary>
    public static ReadOnlySpan<byte> Bytes(nint value)
    {
        var pointer = ValueBlob(value);
        return pointer is null ? [] : new ReadOnlySpan<byte>(pointer, ValueBytes(value));
    }

    /// <summary>A value as <see cref="RawStatement.GetValue"/> reads it: long, double, string, byte[] or null.</summary>
    public static object? Value(nint value) => ValueType(value) switch
    {
        Integer => ValueInt64(value),
        Float => ValueDouble(value),
        Text => Encoding.UTF8.GetString(Bytes(value)),
        Blob => Bytes(value).ToArray(),
        _ => null,
    };

    public static void ResultBlob(nint context, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* pointer = bytes)
        {
            ResultBlobNative(context, pointer, bytes.Length, Transient);
        }
    }

    public static void ResultText(nint context, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        fixed (byte* pointer = bytes)
        {
            ResultTextNative(context, pointer, bytes.Length, Transient);
        }
    }

    /// <summary>Fails the statement with <paramref name="message"/>.</summary>
    public static void ResultError(nint context, string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        fixed (byte* pointer = bytes)
        {
            ResultErrorNative(context, pointer, bytes.Length);
        }
    }

    [LibraryImport(Library, EntryPoint = "sqlite3_create_function_v2", StringMarshalling = StringMarshalling.Utf8)]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    private static partial int CreateFunction(nint db, string name, int arguments, int textRepresentation, nint state, delegate* unmanaged[Cdecl]<nint, int, nint*, void> function, void* step, void* final, void* destroy);

    [LibraryImport(Library, EntryPoint = "sqlite3_user_data")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    private static partial nint UserData(nint context);

    [LibraryImport(Library, EntryPoint = "sqlite3_value_type")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    public static partial int ValueType(nint value);

    [LibraryImport(Library, EntryPoint = "sqlite3_value_int64")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    public static partial long ValueInt64(nint value);

    [LibraryImport(Library, EntryPoint = "sqlite3_value_double")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    public static partial double ValueDouble(nint value);

    [LibraryImport(Library, EntryPoint = "sqlite3_value_blob")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    private static partial byte* ValueBlob(nint value);

    [LibraryImport(Library, EntryPoint = "sqlite3_value_bytes")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    private static partial int ValueBytes(nint value);

    [LibraryImport(Library, EntryPoint = "sqlite3_result_int64")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    public static partial void ResultInt64(nint context, long value);

    [LibraryImport(Library, EntryPoint = "sqlite3_result_null")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    public static partial void ResultNull(nint context);

    [LibraryImport(Library, EntryPoint = "sqlite3_result_blob")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    private static partial void ResultBlobNative(nint context, byte* bytes, int length, nint destructor);

    [LibraryImport(Library, EntryPoint = "sqlite3_result_text")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    private static partial void ResultTextNative(nint context, byte* bytes, int length, nint destructor);

    [LibraryImport(Library, EntryPoint = "sqlite3_result_error")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    [SuppressGCTransition]
    private static partial void ResultErrorNative(nint context, byte* message, int length);
}
