"""Motion mathematics shared by the Blender extension, the server and the tests.

Pure numpy (no bpy, no torch, no scipy), so it runs inside Blender too: the SMPL-22
skeleton, rotations, forward and inverse kinematics, HumanML3D features, and the
motion file formats.
"""
