"""Files: atomic outputs, BEDPE, genome FASTA, HDF5 datasets, model directories."""
