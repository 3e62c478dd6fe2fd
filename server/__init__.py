"""The local model server and the `motiongpt` command line."""
