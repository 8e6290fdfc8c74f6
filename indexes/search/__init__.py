"""Search indexes beside the database: FAISS vector indexes (`vectors`), pHash Hamming indexes
(`hashes`), the segment files both write (`segments`), and the registry's template and photo-hash
indexes kept in step with its tables (`subject_index`)."""
