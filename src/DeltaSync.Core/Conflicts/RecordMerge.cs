namespace DeltaSync.Core.Conflicts;

/// <summary>One version merged into one record: the writes, the decisions and the holds, built into the next base.</summary>
internal sealed class RecordMerge
{
    private readonly RecordBase _record;
    private readonly RecordVersion _version;
    private readonly Detection _detection;
    private readonly ConflictPolicy _policy;
    private readonly ConflictResolver _resolver;
    private readonly FieldDictionary<object?>.Builder _values;
    private readonly FieldDictionary<WriteStamp>.Builder _writers;
    private readonly FieldDictionary<ReviewHold>.Builder _holds;
    private readonly List<HeldUpdate> _heldUpdates = [];
    private bool _exists;
    private WriteStamp? _existence;
    private string? _conflictId;
    private WriteStamp? _stamp;

    public RecordMerge(RecordBase record, RecordVersion version, Detection detection, ConflictPolicy policy, ConflictResolver resolver)
    {
        _record = record;
        _version = version;
        _detection = detection;
        _policy = policy;
        _resolver = resolver;
        _values = record.Values.ToBuilder();
        _writers = record.Writers.ToBuilder();
        _holds = record.Holds.ToBuilder();
        _exists = record.Exists;
        _existence = record.Existence;
    }

    /// <summary>The id a conflict (or hold) of this merge gets; computed only when there is one (it is a digest).</summary>
    public string ConflictId => _conflictId ??= IdOfConflict();

    public IReadOnlyList<HeldUpdate> HeldUpdates => _heldUpdates;

    private WriteStamp Stamp => _stamp ??= _version.Stamp;

    private string Source => _version.Source;

    public void WritePlain()
    {
        foreach (var field in _detection.ConvergentFields)
        {
            _writers[field] = _record.Writers.TryGetValue(field, out var writer) ? _resolver.Dominant(_policy.For(field), writer, Stamp) : Stamp;
        }

        foreach (var field in _detection.PlainFields)
        {
            var value = _version.Values[field];
            if (_policy.For(field).Rule == CustomRule.SumDeltas && !_record.IsNew)
            {
                value = FieldValues.AddDelta(_record.Values.GetValueOrDefault(field), value, Previous(field));
            }

            _values[field] = value;
            _writers[field] = Stamp;
        }
    }

    /// <summary>Decides each conflicting field, in the detection's order.</summary>
    public IReadOnlyList<FieldDecision> Decide()
    {
        var decisions = new List<FieldDecision>();
        foreach (var field in _detection.ConflictingFields)
        {
            var writer = _record.Writers[field];
            var incumbent = new FieldCandidate(writer, _record.Values.GetValueOrDefault(field), _record.PreviousValue(writer.Source, field), _policy.For(field).Rank(writer.Source));
            var incoming = new FieldCandidate(Stamp, _version.Values[field], Previous(field), _policy.For(field).Rank(Source));
            var decision = _resolver.DecideField(_record.Key, field, incumbent, incoming);
            if (decision.Held)
            {
                Hold(field, Candidate(writer, false, field, incumbent.Value), Candidate(Stamp, false, field, incoming.Value), decision.Proposed);
            }
            else
            {
                _values[field] = decision.Value;
                _writers[field] = decision.Stamp;
            }

            decisions.Add(decision);
        }

        return decisions;
    }

    /// <summary>Writes to held fields join their review as this source's newest candidate; the destination keeps its value.</summary>
    public void JoinHolds()
    {
        foreach (var field in _detection.HeldFields)
        {
            Join(field, Candidate(Stamp, false, field, _version.Values[field]));
        }
    }

    /// <summary>Applies the version's effect on existence; returns the decision when it was a delete conflict.</summary>
    public FieldDecision? ApplyExistence()
    {
        var deletes = _version.Operation == VersionOperation.Delete;
        switch (_detection.Existence)
        {
            case ExistenceEffect.Plain:
                _existence = _exists && !deletes && _existence is { } current ? _resolver.Dominant(_policy.Default, current, Stamp) : Stamp;
                _exists = !deletes;
                return null;
            case ExistenceEffect.Concur:
                _existence = _existence is { } deciding ? _resolver.Dominant(_policy.Default, deciding, Stamp) : Stamp;
                return null;
            case ExistenceEffect.Held:
                Join(RecordBase.RecordHoldField, new ConflictCandidate(Stamp, deletes, deletes ? FieldDictionary<object?>.Empty : _version.Values));
                return null;
            default:
                var other = ExistenceIncumbent;
                var incumbent = new FieldCandidate(other, _record.Exists, null, _policy.Default.Rank(other.Source));
                var incoming = new FieldCandidate(Stamp, !deletes, null, _policy.Default.Rank(Source));
                var decision = _resolver.DecideExistence(incumbent, incoming);
                if (decision.Held)
                {
                    Hold(
                        RecordBase.RecordHoldField,
                        new ConflictCandidate(other, !_record.Exists, _record.Exists ? _record.Values : FieldDictionary<object?>.Empty),
                        new ConflictCandidate(Stamp, deletes, deletes ? FieldDictionary<object?>.Empty : _version.Values),
                        decision.Proposed);
                }
                else
                {
                    _exists = (bool)decision.Value!;
                    _existence = decision.Stamp;
                }

                return decision;
        }
    }

    /// <summary>
    /// The other side of a delete conflict: the write that decided the record's existence, or — when that was the
    /// conflicting version's own source — the dominant write of another source to a field it has not seen.
    /// </summary>
    public WriteStamp ExistenceIncumbent
    {
        get
        {
            if (_record.Existence is { } existence && existence.Source != Source)
            {
                return existence;
            }

            WriteStamp? other = null;
            foreach (var writer in _record.Writers.Values)
            {
                if (writer.Source != Source)
                {
                    other = other is null ? writer : _resolver.Dominant(_policy.Default, other, writer);
                }
            }

            return other ?? _record.Existence!;
        }
    }

    public RecordBase Finish()
    {
        var views = _record.SourceViews;
        if (Source != RecordVersion.DestinationSource && _version.Operation == VersionOperation.Upsert)
        {
            var view = views.TryGetValue(Source, out var existing) ? existing : FieldDictionary<object?>.Empty;
            views = views.SetItem(Source, view.SetItems(_version.Values));
        }

        return _record with
        {
            Exists = _exists,
            Existence = _existence,
            InsertedBy = _record.IsNew && _version.Operation == VersionOperation.Upsert ? Stamp : _record.InsertedBy,
            Values = _values.ToImmutable(),
            Writers = _writers.ToImmutable(),
            Holds = _holds.ToImmutable(),
            SourceViews = views,
            SourceStamps = _record.SourceStamps.SetItem(Source, Stamp),
        };
    }

    private string IdOfConflict()
    {
        var incumbents = _detection.ConflictingFields.Select(f => _record.Writers[f]);
        if (_detection.Existence == ExistenceEffect.Conflict && _record.Existence is not null)
        {
            incumbents = incumbents.Append(ExistenceIncumbent);
        }

        return ConflictEngine.ConflictIdOf(_record.Key, _version, incumbents);
    }

    private object? Previous(string field) =>
        Source == RecordVersion.DestinationSource ? _record.Values.GetValueOrDefault(field) : _record.PreviousValue(Source, field);

    private static ConflictCandidate Candidate(WriteStamp stamp, bool deleted, string field, object? value) =>
        new(stamp, deleted, FieldDictionary<object?>.Empty.Add(field, value));

    private void Hold(string field, ConflictCandidate incumbent, ConflictCandidate incoming, FieldDecision? proposed)
    {
        var candidates = FieldDictionary<ConflictCandidate>.Empty
            .SetItem(incumbent.Source, incumbent)
            .SetItem(incoming.Source, incoming);
        ConflictCandidate? proposal = proposed is null ? null : candidates.Values.FirstOrDefault(c => c.Stamp == proposed.Stamp)
            ?? new ConflictCandidate(proposed.Stamp, false, FieldDictionary<object?>.Empty.Add(field, proposed.Value));
        _holds[field] = new ReviewHold(ConflictId, field, candidates, proposal);
    }

    private void Join(string field, ConflictCandidate candidate)
    {
        var hold = _holds[field];
        if (hold.Candidates.TryGetValue(candidate.Source, out var existing) && !candidate.Stamp.IsAfterInSameSource(existing.Stamp))
        {
            return;
        }

        _holds[field] = hold with { Candidates = hold.Candidates.SetItem(candidate.Source, candidate) };
        _heldUpdates.Add(new HeldUpdate(hold.ConflictId, _record.Key, field, candidate));
    }
}
