"""Inference: CF photographs in, APTOS-2024 submission folders (plus montages, index, zip, uncertainty) out.

`inputs` finds the photos, `input_check` judges whether each looks like a colour fundus photograph,
`loading` builds the model from a run folder or config + checkpoint, `runner` batches and samples,
`case_writer`/`layout`/`montage`/`statistics`/`index_file`/`archive` write the results, `cli` is
`scripts/infer.py`.
"""
