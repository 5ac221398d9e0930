"""The tool: `tl-advise PATH` applies the course to your own images or texts, offline (chapter 10).

    tl-advise path/to/folder [--out FOLDER] [--minutes 5] [--size 64] [--seed 0] [--int8]
    tl-advise reviews.csv [--text-column text] [--label-column label] [--out FOLDER] ...
    tl-predict FOLDER/model photo.jpg more/ [--onnx | --int8] [--json]

PATH is a folder with one subfolder of images per class (or train/ val/ test/ folders of them),
or a CSV / JSON-lines file with a column of texts and one of labels (and, optionally, a `split`
column of train/val/test). One pipeline, the same stages for images and texts (`pipeline`):

    read -> check -> split -> features -> ladder -> choose -> save and export -> report

Its modules, each importing only the course's library (tl_utils) and the modules listed above it:

- `textfiles`: a learner's texts and labels from a CSV or JSON-lines file, columns guessed
- `owned`: writing a results folder without touching the files in it that the tool did not write
- `checks`: the data checks on a folder or a text file, and leaving leaked copies out of evaluation
- `ladder`: k-NN, linear probe, top stages or layers, a baseline from scratch, the label curve; the choice
- `result`: `Advice`, what a run found and decided, and `AdviseError`, input it cannot use
- `deploy`: a model with its preprocessing (or tokenizer) as files: saved, loaded, exported to ONNX
- `int8`: `--int8`: an int8 copy of the exported model, kept only if it scores within a tolerance
- `predict`: `tl-predict`'s work: a saved model run on files and folders, batch by batch
- `kinds`: what differs between images and texts at each stage (`Images`, `Texts`), and the time budget
- `recommend`: the recommendation, in sentences made from the comparisons the choice used
- `report`: report.md and its figures
- `pipeline`: `advise`, the stages in order
- `cli`: the `tl-advise` and `tl-predict` commands, their arguments and exit codes

Bad input stops it with a message that says what was wrong and exit status 2 (the exit codes are
in `--help`); nothing half-written is left behind, and a rerun into the same folder replaces only
the files tl-advise wrote there.
"""

from __future__ import annotations

from .. import lazy

_MODULES = ("checks", "cli", "deploy", "int8", "kinds", "ladder", "owned", "pipeline", "predict", "recommend", "report", "result", "textfiles")
_NAMES = {"advise": "pipeline", "STAGES": "pipeline", "ADVISED_PER_CLASS": "pipeline", "ADVISED_VAL": "pipeline",
          "CURVE_FRACTIONS": "kinds", "ONNX_TOLERANCE": "pipeline", "MIN_PER_CLASS": "pipeline",
          "Advice": "result", "AdviseError": "result", "main": "cli", "predict_main": "cli"}

__all__ = [*_MODULES, *_NAMES]

__getattr__, __dir__ = lazy.attributes(__name__, _MODULES, _NAMES)
