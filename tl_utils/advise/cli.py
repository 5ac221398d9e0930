"""The `tl-advise` and `tl-predict` commands: arguments, exit codes, messages; the work is `pipeline`.

Importing this module imports nothing heavy: `--help` and `--version` answer at once, and torch,
timm and matplotlib load only when there is work to do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

__all__ = ["main", "predict_main", "EXIT_CODES"]


EXIT_CODES = """exit status:
  0    done
  1    an internal failure (a bug, or a library that misbehaved): run again with --debug and report the traceback
  2    a problem with the arguments, the data or the installation: the message says what to change
  130  interrupted (Ctrl-C): nothing was written, an earlier output folder is as it was"""


def _number(kind: type, low: float, what: str) -> Callable[[str], float]:
    """An argparse type: a number of `kind` at least `low`, refused with a message otherwise."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value >= low:
            raise argparse.ArgumentTypeError(f"{text} is too small: {what} must be at least {low:g}")
        return value
    return parse


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("tl-hands-on")
    except PackageNotFoundError:  # run from a checkout that was not installed
        release = "unknown"
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {release}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of a failure")
    return parser


def _run(prog: str, debug: bool, work: Callable[[], int]) -> int:
    """Run `work` with the exit codes of EXIT_CODES: input errors 2, internal failures 1, Ctrl-C 130.

    Input errors are AdviseError (the tool's own checks, and the library's errors about a learner's
    files, translated where they are caught) and OSError; any other exception is a failure of ours
    or of a library's (a ValueError from onnxruntime, say), so it exits 1 and asks for a report.
    """
    from ..sources import IntegrityError, MissingSourceError
    from .result import AdviseError

    try:
        return work()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted" + ("; nothing was written, an earlier output folder is as it was"
                                          if prog == "tl-advise" else ""), file=sys.stderr)
        return 130
    except (AdviseError, OSError, IntegrityError, MissingSourceError) as error:  # FileNotFoundError is an OSError
        if debug:
            raise
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a bug: one line, and how to see and report it
        if debug:
            raise
        print(f"{prog}: internal failure ({type(error).__name__}: {error}). Run again with --debug for the "
              "traceback, and please report it.", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """The `tl-advise` command."""
    parser = _parser("tl-advise", "The course applied to your own images or texts, offline (chapter 10).")
    parser.add_argument("path", help="a folder of class subfolders of images (or train/ val/ test/ folders of them), "
                                     "or a CSV / JSON-lines file of texts and labels")
    parser.add_argument("--out", help="where to write report.md, figures/ and model/ (default: PATH-advice here); "
                                      "a rerun replaces only what tl-advise wrote there")
    parser.add_argument("--minutes", type=_number(float, 0.001, "--minutes"), default=5.0,
                        help="time budget from the start to the choice of a method (default 5, for a laptop "
                             "CPU); saving, exporting and --int8 come after it, and the report gives the total")
    parser.add_argument("--size", type=_number(int, 32, "--size"), default=64,
                        help="image side in pixels (default 64; 128+ on a GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-epochs", type=_number(int, 0, "--top-epochs"),
                        help="fixed epochs for fine-tuning (default: what fits; 0 skips it)")
    parser.add_argument("--scratch-epochs", type=_number(int, 0, "--scratch-epochs"),
                        help="fixed epochs for the CNN from scratch (default: what fits; 0 skips it; for texts, "
                             "0 skips the TF-IDF baseline)")
    parser.add_argument("--text-column", help="texts: the column that holds the texts (default: guessed, and said)")
    parser.add_argument("--label-column", help="texts: the column that holds the labels (default: guessed, and said)")
    parser.add_argument("--int8", action="store_true",
                        help="also write model/model.int8.onnx (about a quarter of the size), kept only if its "
                             "validation accuracy is within 1 percentage point of model.onnx's; the report gives "
                             "both")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print only the recommendation and errors")
    loud.add_argument("-v", "--verbose", action="store_true", help="also show progress bars")
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["TL_PROGRESS"] = "1"
    elif "TL_PROGRESS" not in os.environ:
        os.environ["TL_PROGRESS"] = "1" if sys.stderr.isatty() else "0"  # no bars in a log file

    def work() -> int:
        from .pipeline import advise

        advice = advise(args.path, args.out, minutes=args.minutes, size=args.size, seed=args.seed,
                        top_epochs=args.top_epochs, scratch_epochs=args.scratch_epochs, text_column=args.text_column,
                        label_column=args.label_column, int8=args.int8,
                        log=(lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr)))
        print("\n".join(advice.reasons))
        if advice.int8 is not None:  # said with --quiet too: whether the int8 copy was kept
            print(advice.int8.sentence())
        return 0

    return _run("tl-advise", args.debug, work)


def predict_main(argv: list[str] | None = None) -> int:
    """The `tl-predict` command: one line per image (or text), label and probability, tab-separated."""
    parser = _parser("tl-predict", "Label images or texts with a model saved by tl-advise.")
    parser.add_argument("model", help="the model folder tl-advise wrote (it holds model.json)")
    parser.add_argument("files", nargs="+", help="image files or folders of them (searched recursively); for a text "
                                                 "model, .txt files (one text per line), CSV / JSON-lines files, or "
                                                 "folders of them")
    runtime = parser.add_mutually_exclusive_group()
    runtime.add_argument("--onnx", action="store_true", help="run model.onnx with onnxruntime instead of PyTorch")
    runtime.add_argument("--int8", action="store_true", help="run model.int8.onnx, the int8 copy tl-advise --int8 "
                                                             "kept, with onnxruntime")
    parser.add_argument("--json", action="store_true", help="one JSON object per line, with every class's probability")
    args = parser.parse_args(argv)

    def work() -> int:
        from . import predict

        failed = 0
        for rows, skipped in predict.iter_predictions(args.model, args.files, onnx=args.onnx, int8=args.int8):
            for row in rows:  # printed as each batch is done, not at the end
                print(json.dumps(row, ensure_ascii=False) if args.json else
                      f"{row['file']}\t{row['label']}\t{row['probability']:.3f}", flush=True)
            for s in skipped:
                print(f"tl-predict: skipped {s}", file=sys.stderr)
            failed += len(skipped)
        return 2 if failed else 0

    return _run("tl-predict", args.debug, work)


if __name__ == "__main__":
    sys.exit(main())
