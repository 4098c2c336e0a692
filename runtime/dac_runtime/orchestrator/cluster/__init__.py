"""Several orchestrators on one store: each holds a lease under a fencing epoch (``membership``); the
store refuses an execution's writes from any but its owner while that owner's lease holds; a peer whose
lease ran out has its executions taken over by a survivor (``takeover``)."""
