"""`helm test`: one real prediction per routed model through the gateway Service.

Passes when every model answers 200 with a score in [0, 1] from a named backend; prints which
version, route and backend served it. Standard library only.
"""

import json
import os
import sys
import urllib.error
import urllib.request

url = os.environ["GATEWAY_URL"].rstrip("/")
instance = json.loads(os.environ["INSTANCE"])
headers = {"Content-Type": "application/json"}
keys = json.loads(os.environ.get("API_KEYS") or "[]")
if keys:
    headers["X-API-Key"] = keys[0]
failed = 0
for model in os.environ["MODELS"].split():
    body = json.dumps({"instances": [instance]}).encode()
    request = urllib.request.Request(f"{url}/v1/models/{model}/predict", body, headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        print(f"FAIL {model}: HTTP {error.code} {error.read().decode(errors='replace')}")
        failed += 1
        continue
    prediction = answer["predictions"][0]
    if not 0.0 <= prediction["score"] <= 1.0:
        print(f"FAIL {model}: score {prediction['score']} outside [0, 1]")
        failed += 1
        continue
    print(
        f"ok {model}: score {prediction['score']:.4f} from v{prediction['version']} "
        f"({prediction['route']}) on {prediction['backend']} in {answer['latency_ms']:.1f} ms"
    )
sys.exit(1 if failed else 0)
