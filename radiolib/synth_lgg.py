"""The former name of `radiolib.synth.lgg` (the LGG generator), kept for the callers that import it."""
from .synth.lgg import COLUMNS, FAULTS, GENERATOR, TABLE_NAMES, VERSION, synthesize_lgg  # noqa: F401
