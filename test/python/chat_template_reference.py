"""Chat templates rendered by transformers' own renderer (the one behind
apply_chat_template): every template in a folder against every conversation of
conversations.json, with and without the generation prompt. Prints one JSON list:
{"template", "conversation", "add_generation_prompt", "text" or "error"}.

usage: chat_template_reference.py TEMPLATE_DIR
"""
import json
import pathlib
import sys

from transformers.utils.chat_template_utils import render_jinja_template

folder = pathlib.Path(sys.argv[1])
conversations = json.loads((folder / "conversations.json").read_text())
out = []
for path in sorted(folder.glob("*.jinja")):
    template = path.read_text()
    for i, conv in enumerate(conversations):
        for agp in (False, True):
            row = {"template": path.name, "conversation": i, "add_generation_prompt": agp}
            try:
                rendered, _ = render_jinja_template(conversations=[conv], chat_template=template,
                                                    add_generation_prompt=agp, bos_token="<BOS>",
                                                    eos_token="<EOS>")
                row["text"] = rendered[0]
            except Exception as e:  # raise_exception in the template
                row["error"] = str(e)
            out.append(row)
print(json.dumps(out, ensure_ascii=False))
