"""Corpus builders: one module per corpus (download, verify, Kaldi data dirs), apart from the
generic stage tools in ``espnet_mamba.recipe`` (data_dir, tokens, score, ...).

``download`` holds what every downloading corpus shares (resumable HTTP, checksums,
extract-once); ``an4`` and ``mini_librispeech`` are the corpora of issue 28.
"""
