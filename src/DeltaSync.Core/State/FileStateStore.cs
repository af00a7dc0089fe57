using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeltaSync.Core.Model;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Core.State;

/// <summary>
/// Sync state as plain files under one folder:
/// <c>checkpoints/&lt;stream&gt;/&lt;version:D12&gt;.json</c> (the payload exactly as given, its file time is the saved-at instant),
/// <c>dead_letters/&lt;stream&gt;/&lt;hash of record id and raw record&gt;.json</c> and
/// <c>runs/&lt;completed at&gt;_&lt;run id&gt;.json</c> and <c>leases/&lt;stream&gt;.json</c> (see <c>FileStateStore.Leases.cs</c>).
/// Stream and run names are percent-encoded so that they are one reversible file name each.
/// </summary>
/// <remarks>
/// Every file is written to a temporary name in its final folder, fsynced, moved into place and the folder fsynced, so a
/// crash leaves either the old state or the new one. On Linux a checkpoint version is claimed with link(2), which fails
/// atomically when the version exists, so two writers racing for one version get exactly one winner (elsewhere
/// <see cref="File.Move(string, string, bool)"/> without overwrite is used: atomic on Windows, check-then-rename on macOS).
/// Dead-letter attempt counts are read-modify-write: serialized within one store instance, not across processes.
/// </remarks>
public sealed partial class FileStateStore : IStateStore
{
    private const string CheckpointsFolder = "checkpoints";
    private const string DeadLettersFolder = "dead_letters";
    private const string RunsFolder = "runs";
    private const string DeletedPrefix = ".deleted-";

    // Fixed width and no ':' so that a file name sorts by time and is valid on every file system.
    private static readonly InstantPattern RunFileTime = InstantPattern.CreateWithInvariantCulture("uuuuMMdd'T'HHmmss'.'fffffffff'Z'");
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly string _folder;
    private readonly string _root;
    private readonly SemaphoreSlim _deadLetterGate = new(1, 1);

    public FileStateStore(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        _folder = folder;
        _root = Path.GetFullPath(folder);
    }

    public string Description => $"file:{_folder}";

    private string Checkpoints => Path.Combine(_root, CheckpointsFolder);

    private string DeadLetters => Path.Combine(_root, DeadLettersFolder);

    private string Runs => Path.Combine(_root, RunsFolder);

    public Task InitializeAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        DurableFile.EnsureDirectory(_root);
        DurableFile.EnsureDirectory(Checkpoints);
        DurableFile.EnsureDirectory(DeadLetters);
        DurableFile.EnsureDirectory(Runs);
        DurableFile.EnsureDirectory(Leases);

        // A reset interrupted by a crash leaves its history under a hidden name; it is already out of every stream.
        foreach (var leftover in Directory.EnumerateDirectories(Checkpoints, DeletedPrefix + "*"))
        {
            TryDeleteDirectory(leftover);
        }

        return Task.CompletedTask;
    }

    public async Task<IReadOnlyList<StoredCheckpoint>> ReadHistoryAsync(string stream, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        if (limit == 0)
        {
            return [];
        }

        var versions = StoredVersions(stream);
        var result = new List<StoredCheckpoint>(Math.Min(limit, versions.Count));
        foreach (var (version, path) in versions.OrderByDescending(v => v.Version).Take(limit))
        {
            string payload;
            try
            {
                // Invalid UTF-8 is decoded with replacement characters rather than rejected: a damaged version must
                // still be listed so that CheckpointHistory can report it and repair past it.
                payload = await File.ReadAllTextAsync(path, Encoding.UTF8, cancellationToken).ConfigureAwait(false);
            }
            catch (FileNotFoundException)
            {
                continue; // the stream was reset while we listed it
            }

            var savedAt = Instant.FromDateTimeUtc(File.GetLastWriteTimeUtc(path));
            result.Add(new StoredCheckpoint(stream, version, payload, savedAt));
        }

        return result;
    }

    public async Task AppendAsync(StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(checkpoint.Version);
        cancellationToken.ThrowIfCancellationRequested();

        var folder = Path.Combine(Checkpoints, Escape(checkpoint.Stream));
        DurableFile.EnsureDirectory(folder);
        var final = Path.Combine(folder, VersionFileName(checkpoint.Version));
        if (File.Exists(final))
        {
            throw Conflict(checkpoint);
        }

        var temp = await DurableFile.WriteTempAsync(folder, Utf8.GetBytes(checkpoint.Payload), checkpoint.SavedAt, cancellationToken).ConfigureAwait(false);
        try
        {
            if (!NativeFileSystem.TryMoveNoReplace(temp, final))
            {
                throw Conflict(checkpoint);
            }
        }
        finally
        {
            File.Delete(temp);
        }

        NativeFileSystem.FlushDirectory(folder);
    }

    public Task<IReadOnlyList<string>> ListStreamsAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!Directory.Exists(Checkpoints))
        {
            return Task.FromResult<IReadOnlyList<string>>([]);
        }

        var streams = new List<string>();
        foreach (var folder in Directory.EnumerateDirectories(Checkpoints))
        {
            if (TryUnescape(Path.GetFileName(folder), out var stream)
                && Directory.EnumerateFiles(folder, "*.json").Any(f => TryParseVersion(Path.GetFileNameWithoutExtension(f), out _)))
            {
                streams.Add(stream);
            }
        }

        streams.Sort(StringComparer.Ordinal);
        return Task.FromResult<IReadOnlyList<string>>(streams);
    }

    public Task DeleteStreamAsync(string stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        cancellationToken.ThrowIfCancellationRequested();
        var folder = Path.Combine(Checkpoints, Escape(stream));
        if (!Directory.Exists(folder))
        {
            return Task.CompletedTask;
        }

        // Deleting file by file could crash half-way and leave an older version looking current (a silent rollback);
        // renaming the folder out of the way first makes the reset atomic.
        var doomed = Path.Combine(Checkpoints, DeletedPrefix + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.Move(folder, doomed);
        }
        catch (DirectoryNotFoundException)
        {
            return Task.CompletedTask; // reset concurrently
        }

        NativeFileSystem.FlushDirectory(Checkpoints);
        TryDeleteDirectory(doomed);
        return Task.CompletedTask;
    }

    public Task TrimHistoryAsync(string stream, long version, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        cancellationToken.ThrowIfCancellationRequested();
        // Oldest first, file by file: a crash half-way leaves some old versions, never a gap below a kept one.
        foreach (var (_, path) in StoredVersions(stream).Where(v => v.Version < version).OrderBy(v => v.Version))
        {
            File.Delete(path);
        }

        return Task.CompletedTask;
    }

    /// <summary>A stream's version files, unordered (none when the stream has no folder).</summary>
    private List<(long Version, string Path)> StoredVersions(string stream)
    {
        var versions = new List<(long Version, string Path)>();
        var folder = Path.Combine(Checkpoints, Escape(stream));
        if (!Directory.Exists(folder))
        {
            return versions;
        }

        foreach (var path in Directory.EnumerateFiles(folder, "*.json"))
        {
            if (TryParseVersion(Path.GetFileNameWithoutExtension(path), out var version))
            {
                versions.Add((version, path));
            }
        }

        return versions;
    }

    public async Task AddDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deadLetters);
        if (deadLetters.Count == 0)
        {
            return;
        }

        await _deadLetterGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var touched = new HashSet<string>(StringComparer.Ordinal);
            foreach (var letter in deadLetters)
            {
                var folder = Path.Combine(DeadLetters, Escape(letter.Stream));
                DurableFile.EnsureDirectory(folder);
                var path = Path.Combine(folder, DeadLetterFileName(letter));
                var stored = File.Exists(path)
                    ? ReadDeadLetter(path, await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false))
                    : null;
                var merged = stored is null ? letter : letter with { Attempts = stored.Attempts + Math.Max(1, letter.Attempts), FailedAt = Instant.Max(stored.FailedAt, letter.FailedAt) };
                var bytes = Encoding.UTF8.GetBytes(DeadLetterJson(merged).ToJsonString(Indented));
                var temp = await DurableFile.WriteTempAsync(folder, bytes, null, cancellationToken).ConfigureAwait(false);
                File.Move(temp, path, overwrite: true);
                touched.Add(folder);
            }

            foreach (var folder in touched)
            {
                NativeFileSystem.FlushDirectory(folder);
            }
        }
        finally
        {
            _deadLetterGate.Release();
        }
    }

    public async Task<int> RemoveDeadLettersAsync(IReadOnlyList<DeadLetter> deadLetters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deadLetters);
        await _deadLetterGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var removed = 0;
            var touched = new HashSet<string>(StringComparer.Ordinal);
            foreach (var letter in deadLetters)
            {
                var folder = Path.Combine(DeadLetters, Escape(letter.Stream));
                var path = Path.Combine(folder, DeadLetterFileName(letter));
                if (File.Exists(path))
                {
                    File.Delete(path);
                    touched.Add(folder);
                    removed++;
                }
            }

            foreach (var folder in touched)
            {
                NativeFileSystem.FlushDirectory(folder);
            }

            return removed;
        }
        finally
        {
            _deadLetterGate.Release();
        }
    }

    public async Task<IReadOnlyList<DeadLetter>> ReadDeadLettersAsync(string? stream, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        if (limit == 0 || !Directory.Exists(DeadLetters))
        {
            return [];
        }

        IEnumerable<string> folders = stream is null
            ? Directory.EnumerateDirectories(DeadLetters).Where(f => TryUnescape(Path.GetFileName(f), out _))
            : [Path.Combine(DeadLetters, Escape(stream))];
        var letters = new List<DeadLetter>();
        foreach (var folder in folders.Where(Directory.Exists))
        {
            foreach (var path in Directory.EnumerateFiles(folder, "*.json"))
            {
                if (Path.GetFileName(path).StartsWith('.'))
                {
                    continue;
                }

                var text = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
                letters.Add(ReadDeadLetter(path, text));
            }
        }

        return letters
            .OrderBy(l => l.FailedAt)
            .ThenBy(l => l.Stream, StringComparer.Ordinal)
            .ThenBy(l => l.RecordId, StringComparer.Ordinal)
            .Take(limit)
            .ToList();
    }

    public async Task AppendRunAsync(RunRecord run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        DurableFile.EnsureDirectory(Runs);
        var runId = Escape(run.RunId);
        var name = $"{RunFileTime.Format(run.CompletedAt)}_{runId}.json";
        var json = new JsonObject
        {
            ["run_id"] = run.RunId,
            ["completed_at"] = InstantPattern.ExtendedIso.Format(run.CompletedAt),
            ["status"] = run.Status,
            // Kept as a string so the report comes back byte for byte, whatever its formatting.
            ["report"] = run.ReportJson,
        };
        var temp = await DurableFile.WriteTempAsync(Runs, Encoding.UTF8.GetBytes(json.ToJsonString(Indented)), null, cancellationToken).ConfigureAwait(false);
        File.Move(temp, Path.Combine(Runs, name), overwrite: true);

        // A run stored again (say with its final status) replaces the earlier summary, as a keyed store would; runs
        // beyond the newest RunRecord.Kept are forgotten (names sort by completion time).
        var runFiles = new List<string>();
        foreach (var path in Directory.EnumerateFiles(Runs, "*.json"))
        {
            var file = Path.GetFileName(path);
            if (file != name && TrySplitRunFileName(file, out var otherRunId) && otherRunId == runId)
            {
                File.Delete(path);
            }
            else if (TrySplitRunFileName(file, out _))
            {
                runFiles.Add(file);
            }
        }

        runFiles.Sort(StringComparer.Ordinal);
        foreach (var file in runFiles.Take(Math.Max(0, runFiles.Count - RunRecord.Kept)))
        {
            File.Delete(Path.Combine(Runs, file));
        }

        NativeFileSystem.FlushDirectory(Runs);
    }

    public async Task<IReadOnlyList<string>> ReadRunIdsAsync(int limit, CancellationToken cancellationToken)
    {
        var ids = new List<string>();
        foreach (var path in NewestRunFiles(limit))
        {
            // The file name holds the id (escaped; this store names every run file so, and a file renamed by hand is
            // taken at its name); a name that does not unescape is read from the file.
            TrySplitRunFileName(Path.GetFileName(path), out var escaped);
            ids.Add(TryUnescape(escaped, out var id) ? id : (await ReadRunFileAsync(path, cancellationToken).ConfigureAwait(false)).RunId);
        }

        return ids;
    }

    public async Task<IReadOnlyList<RunRecord>> ReadRunsAsync(int limit, CancellationToken cancellationToken)
    {
        var runs = new List<RunRecord>();
        foreach (var path in NewestRunFiles(limit))
        {
            runs.Add(await ReadRunFileAsync(path, cancellationToken).ConfigureAwait(false));
        }

        return runs;
    }

    /// <summary>The newest <paramref name="limit"/> run files, newest first (their names sort by completion time).</summary>
    private List<string> NewestRunFiles(int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        return limit == 0 || !Directory.Exists(Runs)
            ? []
            : Directory.EnumerateFiles(Runs, "*.json")
                .Where(p => TrySplitRunFileName(Path.GetFileName(p), out _))
                .OrderByDescending(p => Path.GetFileName(p), StringComparer.Ordinal)
                .Take(limit)
                .ToList();
    }

    private static async Task<RunRecord> ReadRunFileAsync(string path, CancellationToken cancellationToken)
    {
        var text = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        try
        {
            var o = JsonNode.Parse(text)!.AsObject();
            return new RunRecord(
                o["run_id"]!.GetValue<string>(),
                InstantPattern.ExtendedIso.Parse(o["completed_at"]!.GetValue<string>()).GetValueOrThrow(),
                o["status"]!.GetValue<string>(),
                o["report"]!.GetValue<string>());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or UnparsableValueException)
        {
            throw new InvalidDataException($"run summary '{path}' is unreadable: {e.Message}", e);
        }
    }

    public ValueTask DisposeAsync()
    {
        _deadLetterGate.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Percent-encodes everything but ASCII letters, digits, '-' and '_' (UTF-8 bytes, upper-case hex). '.' is encoded
    /// too, so no name is ever ".", ".." or hidden, and the hidden names this store uses for itself cannot collide.
    /// </summary>
    internal static string Escape(string name)
    {
        var builder = new StringBuilder(name.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(name))
        {
            if (b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'_')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }

    /// <summary>Reverses <see cref="Escape"/>; false for any name <see cref="Escape"/> would not have produced.</summary>
    internal static bool TryUnescape(string escaped, out string name)
    {
        name = "";
        var bytes = new List<byte>(escaped.Length);
        for (var i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] != '%')
            {
                bytes.Add((byte)escaped[i]);
            }
            else if (i + 2 < escaped.Length
                && byte.TryParse(escaped.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                return false;
            }
        }

        try
        {
            name = Utf8.GetString(bytes.ToArray());
        }
        catch (DecoderFallbackException)
        {
            return false;
        }

        // Only the canonical spelling counts: temp files, hidden folders, lower-case hex or names dropped in by hand
        // are not streams, and no stream can have two folders.
        return escaped.Length > 0 && Escape(name) == escaped;
    }

    private static string VersionFileName(long version) => version.ToString("D12", CultureInfo.InvariantCulture) + ".json";

    private static bool TryParseVersion(string stem, out long version)
    {
        version = 0;
        return stem.Length > 0
            && stem.All(char.IsAsciiDigit)
            && long.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out version)
            && version > 0;
    }

    private static bool TrySplitRunFileName(string file, out string escapedRunId)
    {
        escapedRunId = "";
        if (file.StartsWith('.') || !file.EndsWith(".json", StringComparison.Ordinal))
        {
            return false;
        }

        var stem = file[..^".json".Length];
        var underscore = stem.IndexOf('_', StringComparison.Ordinal);
        if (underscore <= 0 || !RunFileTime.Parse(stem[..underscore]).Success)
        {
            return false;
        }

        escapedRunId = stem[(underscore + 1)..];
        return escapedRunId.Length > 0;
    }

    /// <summary>One file per queued record: the name is a hash of what makes two dead letters "the same".</summary>
    private static string DeadLetterFileName(DeadLetter letter)
    {
        var identity = Encoding.UTF8.GetBytes($"{letter.RecordId.Length}:{letter.RecordId}{letter.RawRecord}");
        return Convert.ToHexStringLower(SHA256.HashData(identity)) + ".json";
    }

    private static JsonObject DeadLetterJson(DeadLetter d) => new()
    {
        ["stream"] = d.Stream,
        ["table"] = d.Table,
        ["record_id"] = d.RecordId,
        ["raw_record"] = d.RawRecord,
        ["reason"] = d.Reason,
        ["error_class"] = d.ErrorClass.ToString(),
        ["position"] = d.Position.ToString(),
        ["failed_at"] = InstantPattern.ExtendedIso.Format(d.FailedAt),
        ["attempts"] = d.Attempts,
    };

    private static DeadLetter ReadDeadLetter(string path, string text)
    {
        try
        {
            var o = JsonNode.Parse(text)!.AsObject();
            return new DeadLetter(
                o["stream"]!.GetValue<string>(),
                o["table"]!.GetValue<string>(),
                o["record_id"]!.GetValue<string>(),
                o["raw_record"]!.GetValue<string>(),
                o["reason"]!.GetValue<string>(),
                Enum.Parse<ErrorClass>(o["error_class"]!.GetValue<string>(), ignoreCase: true),
                Position.Parse(o["position"]!.GetValue<string>()),
                InstantPattern.ExtendedIso.Parse(o["failed_at"]!.GetValue<string>()).GetValueOrThrow(),
                o["attempts"]!.GetValue<int>());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or ArgumentException or FormatException or UnparsableValueException)
        {
            throw new InvalidDataException($"dead letter '{path}' is unreadable: {e.Message}. Fix or remove the file.", e);
        }
    }

    private static void TryDeleteDirectory(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
            // another instance cleaned it up
        }
    }

    private StateConflictException Conflict(StoredCheckpoint checkpoint) =>
        new($"version {checkpoint.Version} of '{checkpoint.Stream}' already exists in {Description}: another writer appended it. Reload the checkpoint before writing.");
}
