"""Storage backends behind one contract (``stores.base.Store``)."""
