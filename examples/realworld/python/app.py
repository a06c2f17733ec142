"""A Flask service configured from YAML: the corpus's Python app, built from
Debian's python3 packages (no PyPI)."""
import sys

import yaml
from flask import Flask, jsonify

CONFIG = yaml.safe_load(open("/app/config.yaml"))
app = Flask(__name__)


@app.route("/items")
def items():
    return jsonify(sorted(CONFIG["items"], key=lambda i: i["price"]))


if __name__ == "__main__":
    if "--check" in sys.argv:
        r = app.test_client().get("/items")
        print(r.status_code, [i["name"] for i in r.get_json()])
        sys.exit(0)
    app.run(host="0.0.0.0", port=int(CONFIG.get("port", 8000)))
