"""What the tests, the demo and the benchmarks share to drive the product for real:
building and installing the extension with Blender's own tool (extension), running a
script in a fresh Blender (blender), building humanoid rigs of the common naming
conventions in Blender (rigs), running `motiongpt serve` in its own process (server),
small models with fresh weights (models) and smooth random motions (motions). Not shipped: neither in the extension nor in the wheel's
runtime path of the server."""
