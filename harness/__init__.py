"""What the tests, the demo and the benchmarks share to drive the product for real:
building and installing the extension with Blender's own tool (extension), running a
script in a fresh Blender (blender), and building humanoid rigs of the common naming
conventions in Blender (rigs). Not shipped: neither in the extension nor in the wheel's
runtime path of the server."""
