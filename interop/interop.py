"""Interop between this crate and Alibaba Cloud's official Python SDK.

1. The official client (alibabacloud-captcha20230305) against our emulator.
2. Our client (examples/verify.rs) against a server that checks every request with the
   official SDK's own signing code.

Fails loudly (non-zero exit, a line naming what differed) on any mismatch.
"""

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from types import SimpleNamespace

from alibabacloud_captcha20230305 import models as captcha_models
from alibabacloud_captcha20230305.client import Client as CaptchaClient
from alibabacloud_openapi_util.client import Client as OpenApiUtil
from alibabacloud_tea_openapi import models as openapi_models
from Tea.exceptions import TeaException

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
EXAMPLES = os.path.join(TARGET, "debug", "examples")

KEY_ID, KEY_SECRET = "LTAI5tInteropKey", "interop-secret-value"
STS_ID, STS_SECRET, STS_TOKEN = "STS.InteropTemp", "sts-secret/with+chars=", "CAIS+token/value=="
SCENE = "interop-scene"

failures = []


def check(name, condition, detail=""):
    print(f"{'ok  ' if condition else 'FAIL'} {name}{(': ' + detail) if detail and not condition else ''}")
    if not condition:
        failures.append(name)


def start_emulator(*credentials):
    args = [os.path.join(EXAMPLES, "emulator"), "--listen", "127.0.0.1:0", "--scene", SCENE]
    args += credentials
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    first = process.stdout.readline().strip()
    if not first.startswith("listening on http://"):
        process.kill()
        sys.exit(f"emulator did not start: {first!r}")
    return process, first.removeprefix("listening on ")


def mint(url, **fields):
    request = urllib.request.Request(
        url + "/emulator/params", data=json.dumps(fields).encode(), method="POST",
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["captchaVerifyParam"]


def official_client(url, key_id, secret, token=None):
    config = openapi_models.Config(
        access_key_id=key_id, access_key_secret=secret, security_token=token,
        endpoint=url.removeprefix("http://"), protocol="http")
    return CaptchaClient(config)


def official_verify(client, param, scene=SCENE):
    request = captcha_models.VerifyIntelligentCaptchaRequest(captcha_verify_param=param, scene_id=scene)
    body = client.verify_intelligent_captcha(request).body
    return body.result.verify_result, body.result.verify_code


def official_error(client, param):
    try:
        official_verify(client, param)
    except TeaException as error:
        return error.code
    return None


def part_one():
    print("== the official Python SDK against our emulator")
    emulator, url = start_emulator("--access-key-id", KEY_ID, "--access-key-secret", KEY_SECRET)
    sts, sts_url = start_emulator("--access-key-id", STS_ID, "--access-key-secret", STS_SECRET,
                                  "--security-token", STS_TOKEN)
    try:
        client = official_client(url, KEY_ID, KEY_SECRET)
        param = mint(url)
        check("T001 passes", official_verify(client, param) == (True, "T001"))
        check("reused V3 param is F018", official_verify(client, param) == (False, "F018"))
        v2 = mint(url, format="v2")
        check("V2 param passes", official_verify(client, v2) == (True, "T001"))
        check("reused V2 param is F008", official_verify(client, v2) == (False, "F008"))
        check("F015 fails", official_verify(client, mint(url, verdict="F015")) == (False, "F015"))
        wrong_secret = official_client(url, KEY_ID, "not-the-secret")
        code = official_error(wrong_secret, mint(url))
        check("wrong secret is SignatureDoesNotMatch", code == "SignatureDoesNotMatch", str(code))
        unknown = official_client(url, "LTAInobody", KEY_SECRET)
        code = official_error(unknown, mint(url))
        check("unknown key is InvalidAccessKeyId.NotFound", code == "InvalidAccessKeyId.NotFound", str(code))
        sts_client = official_client(sts_url, STS_ID, STS_SECRET, STS_TOKEN)
        check("STS credentials pass", official_verify(sts_client, mint(sts_url)) == (True, "T001"))
        bad_token = official_client(sts_url, STS_ID, STS_SECRET, "wrong-token")
        code = official_error(bad_token, mint(sts_url))
        check("STS with a wrong token is refused", code == "InvalidSecurityToken.MismatchWithAccessKey", str(code))
    finally:
        for process in (emulator, sts):
            process.terminate()
            process.wait(timeout=10)
    check("emulator stops on SIGTERM", emulator.returncode == 0 and sts.returncode == 0,
          f"{emulator.returncode} {sts.returncode}")


class SigningChecker(http.server.BaseHTTPRequestHandler):
    """Answers like the service, after recomputing the Authorization with the SDK's code."""

    expected = {}  # set by the test: param, scene, key id, secret, token
    seen = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        problems = []
        authorization = self.headers.get("authorization", "")
        parts = dict(p.split("=", 1) for p in authorization.removeprefix("ACS3-HMAC-SHA256 ").split(","))
        signed = parts.get("SignedHeaders", "").split(";")
        for required in ("host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
                         "x-acs-content-sha256", "content-type"):
            if required not in signed:
                problems.append(f"{required} not signed")
        for name in self.headers.keys():
            if name.lower().startswith("x-acs-") and name.lower() not in signed:
                problems.append(f"{name} sent but not signed")
        expected = SigningChecker.expected
        token = expected.get("token")
        if token is not None and self.headers.get("x-acs-security-token") != token:
            problems.append("x-acs-security-token missing or wrong")
        payload = hashlib.sha256(body).hexdigest()
        if self.headers.get("x-acs-content-sha256") != payload:
            problems.append("x-acs-content-sha256 is not the body's hash")
        request = SimpleNamespace(pathname="/", method="POST", query={},
                                  headers={name: self.headers.get(name) for name in signed})
        recomputed = OpenApiUtil.get_authorization(request, "ACS3-HMAC-SHA256", payload,
                                                   expected["key_id"], expected["secret"])
        if recomputed != authorization:
            problems.append(f"Authorization differs from the SDK's: {recomputed} != {authorization}")
        form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        if form.get("CaptchaVerifyParam") != [expected["param"]]:
            problems.append(f"CaptchaVerifyParam arrived as {form.get('CaptchaVerifyParam')!r}")
        if form.get("SceneId") != [expected["scene"]]:
            problems.append(f"SceneId arrived as {form.get('SceneId')!r}")
        sdk_body = urllib.parse.urlencode(sorted({"CaptchaVerifyParam": expected["param"],
                                                  "SceneId": expected["scene"]}.items()))
        if body.decode() != sdk_body:
            problems.append(f"body differs from the SDK's encoding: {body!r} != {sdk_body!r}")
        SigningChecker.seen.append(problems)
        if problems:
            answer, status = {"RequestId": "x", "Code": "SignatureDoesNotMatch", "Message": "; ".join(problems)}, 400
        else:
            answer, status = {"RequestId": "x", "Code": "Success", "Success": True, "Message": "success",
                              "Result": {"VerifyResult": True, "VerifyCode": "T001"}}, 200
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def part_two():
    print("== our client checked by the official SDK's signing code")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SigningChecker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    params = [
        "eyJjZXJ0aWZ5SWQiOiJhYmMiLCJzY2VuZUlkIjoiZGVmIn0=",
        '{"sceneId":"s","certifyId":"a+b/c=d","data":"x y&z=1"}',
        "reserved !*'();:@&=+$,/?#[] and spaces",
        "中文验证码 ✓ émoji 🎉🔐",
        "CaptchaVerifyParam=forged&SceneId=other",
        "tab\there %41 percent",
    ]
    scenes = ["scene id*~+/", "1ezx8pyn"]
    try:
        for credentials in ({"key_id": KEY_ID, "secret": KEY_SECRET, "token": None},
                            {"key_id": STS_ID, "secret": STS_SECRET, "token": STS_TOKEN}):
            for index, param in enumerate(params):
                scene = scenes[index % len(scenes)]
                SigningChecker.expected = {"param": param, "scene": scene, **credentials}
                env = dict(os.environ, ALIBABA_CLOUD_ACCESS_KEY_ID=credentials["key_id"],
                           ALIBABA_CLOUD_ACCESS_KEY_SECRET=credentials["secret"])
                env.pop("ALIBABA_CLOUD_SECURITY_TOKEN", None)
                if credentials["token"]:
                    env["ALIBABA_CLOUD_SECURITY_TOKEN"] = credentials["token"]
                run = subprocess.run([os.path.join(EXAMPLES, "verify"), "--endpoint", url, "--scene", scene, param],
                                     env=env, capture_output=True, text=True, timeout=30)
                label = f"{'STS' if credentials['token'] else 'AK'} param {param!r}"
                check(label, run.returncode == 0 and SigningChecker.seen and not SigningChecker.seen[-1],
                      f"exit {run.returncode}: {run.stdout.strip()} {run.stderr.strip()}")
    finally:
        server.shutdown()


def main():
    part_one()
    part_two()
    if failures:
        print(f"interop: {len(failures)} check(s) failed: {failures}")
        sys.exit(1)
    print("interop: every check passed")


if __name__ == "__main__":
    main()
