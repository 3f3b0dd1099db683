"""The datasets: one module per dataset family, one registry (`registry`), what a dataset is
(`spec`), the prepared-split file format (`files`), sources and loaders (`source`) and GPU-side
augmentation (`augment`). Importing the package loads nothing: config validation reads
`augment_modes` and `split_list` without torch."""
