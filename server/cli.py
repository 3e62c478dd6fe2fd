"""The `motiongpt` command line.

Each subcommand imports what it needs when it runs, so light commands such as
`convert` never load torch.
"""

import argparse
import sys


def _convert(args) -> None:
    from retarget.formats import FORMATS, format_from_suffix, read_motion, write_motion

    source_format = args.source_format or format_from_suffix(args.input)
    target_format = args.target_format or format_from_suffix(args.output)
    for role, fmt, path in (("--from", source_format, args.input), ("--to", target_format, args.output)):
        if fmt is None:
            raise ValueError(f"cannot tell the format of {path} from its name: give {role} ({', '.join(FORMATS)})")
    motion = read_motion(args.input, source_format)
    write_motion(motion, args.output, target_format)
    print(f"{args.output}: {motion.frames} frames at {motion.fps:g} fps ({source_format} -> {target_format})")


def build_parser() -> argparse.ArgumentParser:
    from retarget.formats import FORMATS

    parser = argparse.ArgumentParser(prog="motiongpt", description="Text-to-motion tools for the MotionGPT Blender extension.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser(
        "convert",
        help="convert a motion between file formats",
        description=(
            "Convert a motion on the SMPL-22 skeleton between formats. hml3d: (T, 263) npy of "
            "HumanML3D features; joints: (T, 22, 3) npy, metres, Y up; smpl: npz with poses "
            "(T, 66 axis-angle), trans, betas, mocap_framerate (files without up_axis are read "
            "as AMASS's Z up); bvh: BVH with the SMPL-22 joint names. hml3d and joints are 20 fps. "
            "Features need two frames per feature frame: T joint frames give T-1 feature frames."
        ),
    )
    convert.add_argument("--from", dest="source_format", choices=FORMATS, help="input format (default: from the suffix)")
    convert.add_argument("--to", dest="target_format", choices=FORMATS, help="output format (default: from the suffix)")
    convert.add_argument("input")
    convert.add_argument("output")
    convert.set_defaults(run=_convert)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as error:
        print(f"motiongpt {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
