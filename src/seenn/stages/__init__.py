"""One module per stage family, each holding its `declare()` and the function `seenn run` calls:
thin, calling the layers below and writing artifacts. `declaration` says what a stage is,
`layout` and `teas_paths` where its files live; `seenn.pipeline.table` assembles the table."""
