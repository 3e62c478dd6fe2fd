"""The project's own labelled motion corpus: a motion synthesizer on the SMPL-22 skeleton,
caption templates, and a writer of HumanML3D's on-disk layout (`motiongpt data synth`)."""
