"""Pure rules decided before anything starts: per-run caps (``limits``) and monthly budgets (``budget``)."""
