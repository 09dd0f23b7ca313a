"""Demo of the vendor's website with the Atende chat widget (app env, stdlib HTTP server)."""
