"""Command line: `python -m radiolib synth ...`, `python -m radiolib study --profile NAME ...` and
`python -m radiolib fetch duke --out DIR ...` (the real collection from Imaging Data Commons)."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .params import check_study, parse_overrides


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="radiolib", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic DCE-MRI cohort in the Duke-Breast-Cancer-MRI layout")
    s.add_argument("--out", required=True, help="folder to create")
    s.add_argument("--patients", type=int, default=270)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--effect", type=float, default=1.0, help="strength of the subtype-image link; 0 = null cohort")
    s.add_argument("--faults", action="store_true", help="inject the faults the paper excluded patients for")
    s.add_argument("--jobs", type=int, default=2, help="worker processes")
    s.add_argument("--no-gene-link", action="store_true",
                   help="deal the gene table's profiles to the patients at random: a null cohort for notebooks 08-09")
    s.add_argument("--masks", action="store_true",
                   help="also each patient's tumour mask as a DICOM SEG (highdicom), where `fetch duke --masks aimi` "
                        "puts the real AIMI segmentations (OUT/AIMI_SEG)")

    r = sub.add_parser("study", help="run the notebooks in order with papermill")
    r.add_argument("--profile", default="demo", help="a folder of params/ (smoke, demo, paper, ...)")
    r.add_argument("--data", help="a Duke-layout download; default: the profile's synthetic cohort")
    r.add_argument("--out", help="run folder (default runs/<profile>)")
    r.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter for every notebook that has it (repeatable)")
    r.add_argument("--notebooks", nargs="+", help="run only these notebook stems")
    r.add_argument("--params", help="a folder of profiles to use instead of the project's params/")
    r.add_argument("--fresh", action="store_true",
                   help="delete the run folder's earlier notebooks, results/, figures/ and run.json first")

    f = sub.add_parser("fetch", help="download the real Duke-Breast-Cancer-MRI series from Imaging Data Commons: "
                                     "planned offline from idc-index's series index, printed before any transfer")
    f.add_argument("collection", choices=["duke"])
    f.add_argument("--out", help="the data folder to fill (the loader's layout); needed unless --dry-run")
    which = f.add_mutually_exclusive_group()
    which.add_argument("--patients", type=int, metavar="N",
                       help="a random sample of N of the patients the plan includes (seeded by --seed; stratified "
                            "by the luminal-like label when --tables is given); default: every patient")
    which.add_argument("--ids", metavar="FILE", help="only these PatientIDs, one a line (Breast_MRI_007 or 7)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--dry-run", action="store_true", help="print (and with --plan write) the plan; transfer nothing")
    f.add_argument("--plan", metavar="FILE.json", help="write the plan: per patient its phases (phase -> "
                                                       "SeriesInstanceUID) or the reason it is excluded")
    f.add_argument("--phases", choices=["study", "all"], default="study",
                   help="study: pre and post1-3; all: every MR series of each included patient")
    f.add_argument("--masks", choices=["aimi"], help="also the AIMI breast-tumour SEG objects (IDC analysis result "
                                                     "bamf_aimi_annotations), under OUT/AIMI_SEG")
    f.add_argument("--tables", metavar="DIR", help="a folder holding Annotation_Boxes.csv and "
                                                   "Clinical_and_Other_Features.xlsx (not in IDC): copied into --out")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "synth":
            from ..data.synth import FAULTS, synthesize  # lazy: keeps `radiolib --help` fast (torch, pandas)
            out = synthesize(args.out, patients=args.patients, seed=args.seed, effect=args.effect,
                             gene_link=not args.no_gene_link, masks=args.masks,
                             faults=list(FAULTS) if args.faults else [], n_jobs=args.jobs)
            print(f"synthetic cohort written to {out}")
        elif args.command == "fetch":
            return _fetch(args)
        else:
            return _study(args)
    except ImportError as err:  # an optional package (idc-index for fetch): the message names the install command
        print(f"radiolib {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, KeyError) as err:
        print(f"radiolib {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a read-only or full disk, a path that is a file: one line, not a traceback
        where = f": {err.filename}" if err.filename else ""
        print(f"radiolib {args.command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    return 0


def _checked_overrides(args) -> dict | None:
    """The parsed -p overrides if every parameter of every notebook to run is valid; else None, after printing
    one line per problem (bad -p value, unreadable or wrong profile file, out-of-range value) to stderr."""
    from . import study  # lazy: keeps `radiolib --help` fast (torch, pandas)
    try:
        overrides = parse_overrides(args.overrides)
    except ValueError as err:
        problems = str(err).splitlines()
    else:
        params_dir = Path(args.params) if args.params else study.repo_notebooks().parent / "params"
        problems = check_study(args.profile, overrides, params_dir, args.notebooks, args.data)
    for problem in problems:
        print(f"radiolib study: error: {problem}", file=sys.stderr)
    return None if problems else overrides


def _study(args) -> int:
    """Run the study; 1 when a notebook failed (the message names it, its cell and the command to resume)."""
    from . import study  # lazy: keeps `radiolib --help` fast (torch, pandas)
    overrides = _checked_overrides(args)
    if overrides is None:
        return 2
    before = signal.signal(signal.SIGTERM, _terminated)  # a scheduler's stop: run.json records it, kernel shut down
    try:
        study.run_study(args.profile, data=args.data, out=args.out, overrides=overrides,
                        notebooks=args.notebooks, params_dir=args.params, fresh=args.fresh)
    except study.NotebookFailed as err:
        print(f"radiolib study: error: {err}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, before)
    return 0


def _fetch(args) -> int:
    """Plan from the offline IDC index, print it (and write --plan), then download unless --dry-run; 1 when series
    are still short of files after the transfer."""
    if args.out is None and not args.dry_run:
        raise ValueError("--out DIR is needed to download (or --dry-run to plan only)")
    from ..data import fetch  # lazy: keeps `radiolib --help` fast (torch, pandas)
    _, version = fetch.index_file()
    index = fetch.read_index()
    tables = fetch.check_tables(Path(args.tables) if args.tables else None)
    plan = fetch.make_plan(index, ids=fetch.read_ids(args.ids) if args.ids else None, n=args.patients,
                           seed=args.seed, phases=args.phases, masks=args.masks, tables=tables,
                           index_version=version)
    print("\n".join(fetch.describe(plan, index)))
    if args.plan:
        print(f"plan written to {plan.write(args.plan)}")
    out = Path(args.out) if args.out else None
    print("\n".join(fetch.place_tables(tables, None if args.dry_run else out, fetch.collection_doi(index))))
    if args.dry_run:
        return 0
    short = fetch.download(plan, out)
    for line in short:
        print(f"radiolib fetch: incomplete: {line}", file=sys.stderr)
    if short:
        print(f"radiolib fetch: {len(short)} series short of files; run the same command again to resume",
              file=sys.stderr)
        return 1
    print(f"{plan.totals()['series']:,} series complete in {out}")
    return 0


def _terminated(signum, frame):
    raise SystemExit(128 + signum)
