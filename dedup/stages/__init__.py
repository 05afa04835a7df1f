"""The dedup stages, one module each (options, steps, registration): exact_substring_dedup, minhash_dedup,
exact_doc_dedup. Their kernels are plain modules of `curate.dedup`."""
