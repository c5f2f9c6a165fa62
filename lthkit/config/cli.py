"""lthkit-params: show the full parameter set a file resolves to, or check parameter files.

    lthkit-params show params/quick.yaml        # python -m lthkit.config show ... does the same
    lthkit-params check params/*.yaml           # validate files, exit 1 on the first error

`check` also asks what reading a file cannot tell (lthkit.config.catalog.check_inputs): one
forward pass of the network on a stand-in batch of the dataset's shape, and an image folder's
classes and files.
"""

from __future__ import annotations

import argparse
import sys

from lthkit.config.base import ParamsError
from lthkit.config.catalog import check_inputs
from lthkit.config.params import load_params, parse_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lthkit-params", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the full parameter set a file resolves to")
    show.add_argument("file")
    show.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    check = sub.add_parser("check", help="validate parameter files, and try each network on a "
                           "stand-in batch of its dataset's images")
    check.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "show":
            print(load_params(args.file, parse_overrides(args.set)).to_yaml(), end="")
        else:
            for f in args.files:
                check_inputs(load_params(f))
                print(f"ok  {f}")
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
