"""Measuring a model honestly: a motion-text retrieval model trained here (the
HumanML3D evaluator's role), the standard text-to-motion, captioning, prediction and
in-between metrics, and `motiongpt eval`'s report."""
