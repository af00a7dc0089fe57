// Trials time faults against real processes and servers on a small machine: one at a time, so a trial's timing is its
// own and a kill lands where its seed says, not where another trial's load pushed it.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
