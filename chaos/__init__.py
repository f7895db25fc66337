"""The fault and abuse suite: faults and hostile input against real processes, with counted invariants."""
