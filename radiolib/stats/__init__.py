"""Statistics: the paper's evaluation protocol (folds, AUC, bootstrap, DeLong), the ceiling, and the radiogenomic
tests of notebooks 07-09 (receptor prediction, associations with genes, gene masking)."""
