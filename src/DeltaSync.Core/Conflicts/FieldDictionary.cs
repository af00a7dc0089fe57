using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// An immutable map from field (or source) names to values, kept as two arrays in ordinal name order. A record has a
/// handful of fields and sources, so copying a small array on write costs less than a hash tree costs to build, read
/// and walk; and it enumerates in name order, which is the order record bases are stored in.
/// </summary>
/// <typeparam name="T">The value type.</typeparam>
public sealed class FieldDictionary<T> : IReadOnlyDictionary<string, T>
{
    /// <summary>The empty map.</summary>
    public static readonly FieldDictionary<T> Empty = new([], []);

    private readonly string[] _keys;
    private readonly T[] _values;

    private FieldDictionary(string[] keys, T[] values)
    {
        _keys = keys;
        _values = values;
    }

    public int Count => _keys.Length;

    public bool IsEmpty => _keys.Length == 0;

    /// <summary>The names, in ordinal order.</summary>
    public IEnumerable<string> Keys => _keys;

    public IEnumerable<T> Values => _values;

    public T this[string key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"'{key}' is not in the map");

    public bool ContainsKey(string key) => IndexOf(key) >= 0;

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out T value)
    {
        var index = IndexOf(key);
        if (index < 0)
        {
            value = default;
            return false;
        }

        value = _values[index];
        return true;
    }

    /// <summary>This map with <paramref name="key"/> set to <paramref name="value"/>; this very map when it already holds that value.</summary>
    public FieldDictionary<T> SetItem(string key, T value)
    {
        ArgumentNullException.ThrowIfNull(key);
        var index = IndexOf(key);
        if (index >= 0)
        {
            if (EqualityComparer<T>.Default.Equals(_values[index], value))
            {
                return this;
            }

            var values = (T[])_values.Clone();
            values[index] = value;
            return new FieldDictionary<T>(_keys, values);
        }

        index = ~index;
        var keys = new string[_keys.Length + 1];
        var newValues = new T[_keys.Length + 1];
        Array.Copy(_keys, keys, index);
        Array.Copy(_values, newValues, index);
        keys[index] = key;
        newValues[index] = value;
        Array.Copy(_keys, index, keys, index + 1, _keys.Length - index);
        Array.Copy(_values, index, newValues, index + 1, _keys.Length - index);
        return new FieldDictionary<T>(keys, newValues);
    }

    /// <summary>This map with <paramref name="key"/> added.</summary>
    /// <exception cref="ArgumentException">The key is already there with another value.</exception>
    public FieldDictionary<T> Add(string key, T value) =>
        TryGetValue(key, out var existing) && !EqualityComparer<T>.Default.Equals(existing, value)
            ? throw new ArgumentException($"'{key}' is already in the map", nameof(key))
            : SetItem(key, value);

    /// <summary>This map with every pair of <paramref name="items"/> set; this very map when nothing changes.</summary>
    public FieldDictionary<T> SetItems(IEnumerable<KeyValuePair<string, T>> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var builder = ToBuilder();
        foreach (var (key, value) in items)
        {
            builder[key] = value;
        }

        return builder.ToImmutable();
    }

    /// <summary>This map without <paramref name="key"/>; this very map when it was not there.</summary>
    public FieldDictionary<T> Remove(string key)
    {
        var index = IndexOf(key);
        if (index < 0)
        {
            return this;
        }

        if (_keys.Length == 1)
        {
            return Empty;
        }

        var keys = new string[_keys.Length - 1];
        var values = new T[_keys.Length - 1];
        Array.Copy(_keys, keys, index);
        Array.Copy(_values, values, index);
        Array.Copy(_keys, index + 1, keys, index, _keys.Length - index - 1);
        Array.Copy(_values, index + 1, values, index, _keys.Length - index - 1);
        return new FieldDictionary<T>(keys, values);
    }

    /// <summary>This map without <paramref name="keys"/>.</summary>
    public FieldDictionary<T> RemoveRange(IEnumerable<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var builder = ToBuilder();
        foreach (var key in keys)
        {
            builder.Remove(key);
        }

        return builder.ToImmutable();
    }

    /// <summary>A mutable copy that turns back into a map; unchanged, it gives back this very map.</summary>
    public Builder ToBuilder() => new(this);

    /// <summary>A map over <paramref name="keys"/> (strictly ascending by ordinal, which the caller has checked; may be shared between maps) and <paramref name="values"/>.</summary>
    internal static FieldDictionary<T> FromOrdered(string[] keys, T[] values) => keys.Length == 0 ? Empty : new(keys, values);

    public Enumerator GetEnumerator() => new(this);

    IEnumerator<KeyValuePair<string, T>> IEnumerable<KeyValuePair<string, T>>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private int IndexOf(string key) => Array.BinarySearch(_keys, key, StringComparer.Ordinal);

    /// <summary>Walks the pairs in name order without allocating.</summary>
    public struct Enumerator : IEnumerator<KeyValuePair<string, T>>
    {
        private readonly FieldDictionary<T> _map;
        private int _index;

        internal Enumerator(FieldDictionary<T> map)
        {
            _map = map;
            _index = -1;
        }

        public readonly KeyValuePair<string, T> Current => new(_map._keys[_index], _map._values[_index]);

        readonly object IEnumerator.Current => Current;

        public bool MoveNext() => ++_index < _map._keys.Length;

        public void Reset() => _index = -1;

        public readonly void Dispose()
        {
        }
    }

    /// <summary>
    /// A mutable map in name order that becomes a <see cref="FieldDictionary{T}"/> again. Changing values only shares
    /// the original's names; adding or removing a name copies them.
    /// </summary>
    public sealed class Builder
    {
        private FieldDictionary<T> _origin;
        private string[]? _keys;
        private T[]? _values;
        private int _count;
        private bool _sharedKeys;

        internal Builder(FieldDictionary<T> origin)
        {
            _origin = origin;
        }

        public int Count => _values is null ? _origin.Count : _count;

        public T this[string key]
        {
            get => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"'{key}' is not in the map");
            set
            {
                ArgumentNullException.ThrowIfNull(key);
                if (_values is null)
                {
                    var existing = _origin.IndexOf(key);
                    if (existing >= 0)
                    {
                        if (EqualityComparer<T>.Default.Equals(_origin._values[existing], value))
                        {
                            return;
                        }

                        Detach(_origin.Count);
                        _values![existing] = value;
                        return;
                    }

                    Detach(_origin.Count + 1);
                }

                // Keys usually arrive in order (decoding a stored base): appending needs no search.
                var index = _count == 0 || string.CompareOrdinal(_keys![_count - 1], key) < 0 ? ~_count : Array.BinarySearch(_keys, 0, _count, key, StringComparer.Ordinal);
                if (index >= 0)
                {
                    _values![index] = value;
                    return;
                }

                index = ~index;
                OwnKeys(_count + 1);
                Array.Copy(_keys!, index, _keys!, index + 1, _count - index);
                Array.Copy(_values!, index, _values!, index + 1, _count - index);
                _keys![index] = key;
                _values![index] = value;
                _count++;
            }
        }

        public bool ContainsKey(string key) => TryGetValue(key, out _);

        public bool TryGetValue(string key, [MaybeNullWhen(false)] out T value)
        {
            if (_values is null)
            {
                return _origin.TryGetValue(key, out value);
            }

            var index = Array.BinarySearch(_keys!, 0, _count, key, StringComparer.Ordinal);
            value = index >= 0 ? _values[index] : default;
            return index >= 0;
        }

        public bool Remove(string key)
        {
            if (_values is null)
            {
                if (!_origin.ContainsKey(key))
                {
                    return false;
                }

                Detach(_origin.Count);
            }

            var index = Array.BinarySearch(_keys!, 0, _count, key, StringComparer.Ordinal);
            if (index < 0)
            {
                return false;
            }

            OwnKeys(_count);
            Array.Copy(_keys!, index + 1, _keys!, index, _count - index - 1);
            Array.Copy(_values!, index + 1, _values!, index, _count - index - 1);
            _count--;
            _keys![_count] = null!;
            _values![_count] = default!;
            return true;
        }

        /// <summary>The map; the original one when nothing changed. The builder can go on from it.</summary>
        public FieldDictionary<T> ToImmutable()
        {
            if (_values is null)
            {
                return _origin;
            }

            var keys = _keys!;
            var values = _values;
            if (_count != values.Length)
            {
                Array.Resize(ref values, _count);
            }

            if (_count != keys.Length)
            {
                Array.Resize(ref keys, _count);
            }

            // The arrays now belong to the map: a later change copies them again.
            _origin = _count == 0 ? Empty : new FieldDictionary<T>(keys, values);
            _keys = null;
            _values = null;
            _count = 0;
            _sharedKeys = false;
            return _origin;
        }

        private void Detach(int capacity)
        {
            _count = _origin.Count;
            _values = new T[Math.Max(capacity, _count)];
            Array.Copy(_origin._values, _values, _count);
            _keys = _origin._keys;
            _sharedKeys = true;
        }

        /// <summary>Makes the names this builder's own, with room for <paramref name="needed"/> of them.</summary>
        private void OwnKeys(int needed)
        {
            if (_sharedKeys || _keys!.Length < needed)
            {
                var keys = new string[Math.Max(needed, Math.Min(Math.Max(4, _count * 2), needed + 8))];
                Array.Copy(_keys!, keys, _count);
                _keys = keys;
                _sharedKeys = false;
            }

            if (_values!.Length < needed)
            {
                Array.Resize(ref _values, _keys.Length);
            }
        }
    }
}

/// <summary>Creates <see cref="FieldDictionary{T}"/>s.</summary>
public static class FieldDictionary
{
    /// <summary>The map of <paramref name="pairs"/> (a later pair of the same name wins).</summary>
    public static FieldDictionary<T> From<T>(IEnumerable<KeyValuePair<string, T>> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var builder = FieldDictionary<T>.Empty.ToBuilder();
        foreach (var (key, value) in pairs)
        {
            builder[key] = value;
        }

        return builder.ToImmutable();
    }

    /// <summary>A map of one pair.</summary>
    public static FieldDictionary<T> Of<T>(string key, T value) => FieldDictionary<T>.Empty.SetItem(key, value);
}
