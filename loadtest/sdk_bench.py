"""The official Python SDK against our emulator: signing, sequential and thread-pool
verifications. Prints JSON lines like the load generator (loadtest/loadgen)."""

import argparse
import concurrent.futures
import hashlib
import json
import time
import urllib.request
from types import SimpleNamespace

from alibabacloud_captcha20230305 import models as captcha_models
from alibabacloud_captcha20230305.client import Client as CaptchaClient
from alibabacloud_openapi_util.client import Client as OpenApiUtil
from alibabacloud_tea_openapi import models as openapi_models


def mint(url, scene, count):
    params = []
    for _ in range(count):
        request = urllib.request.Request(url + "/emulator/params", method="POST",
                                         data=json.dumps({"scene": scene}).encode())
        with urllib.request.urlopen(request) as response:
            params.append(json.load(response)["captchaVerifyParam"])
    return params


def percentile(sorted_us, p):
    return sorted_us[round((len(sorted_us) - 1) * p)] if sorted_us else 0


def report(scenario, concurrency, latencies, seconds, cpu_seconds, errors):
    latencies.sort()
    print(json.dumps({
        "scenario": scenario, "requests": len(latencies), "concurrency": concurrency,
        "seconds": round(seconds, 3), "per_second": round(len(latencies) / seconds),
        "p50_us": percentile(latencies, 0.5), "p99_us": percentile(latencies, 0.99),
        "cpu_us_per_request": round(cpu_seconds * 1e6 / max(len(latencies), 1)),
        "errors": errors,
    }), flush=True)


def sign_bench(count):
    param = "eyJjZXJ0aWZ5SWQiOiJhYmMxMjMiLCJzY2VuZUlkIjoiMWV6eDhweW4iLCJpc1NpZ24iOnRy" * 4 + "fQ=="
    body = f"CaptchaVerifyParam={param}&SceneId=bench-scene".encode()
    started = time.perf_counter()
    for _ in range(count):
        payload = hashlib.sha256(body).hexdigest()
        request = SimpleNamespace(pathname="/", method="POST", query={}, headers={
            "host": "captcha.cn-shanghai.aliyuncs.com", "x-acs-action": "VerifyIntelligentCaptcha",
            "x-acs-version": "2023-03-05", "x-acs-date": "2026-11-24T10:00:00Z",
            "x-acs-signature-nonce": "0f3c2a9e8b7d4c1a9e2b3c4d5e6f7a8b", "x-acs-content-sha256": payload,
            "content-type": "application/x-www-form-urlencoded"})
        OpenApiUtil.get_authorization(request, "ACS3-HMAC-SHA256", payload,
                                      "LTAI5tExampleAccessKeyId", "ExampleAccessKeySecret0123456789")
    seconds = time.perf_counter() - started
    print(json.dumps({"scenario": "sdk-sign", "requests": count, "concurrency": 1,
                      "seconds": round(seconds, 3), "per_second": round(count / seconds),
                      "ns_per_op": round(seconds * 1e9 / count)}), flush=True)


def verify_bench(url, key_id, secret, scene, count, threads):
    config = openapi_models.Config(access_key_id=key_id, access_key_secret=secret,
                                   endpoint=url.removeprefix("http://"), protocol="http")
    client = CaptchaClient(config)  # one client, reused
    params = mint(url, scene, count)

    def one(param):
        started = time.perf_counter()
        request = captcha_models.VerifyIntelligentCaptchaRequest(captcha_verify_param=param, scene_id=scene)
        try:
            body = client.verify_intelligent_captcha(request).body
            ok = body.result.verify_result
        except Exception as error:  # noqa: BLE001 - counted, reported by kind
            return None, type(error).__name__
        return (round((time.perf_counter() - started) * 1e6), None) if ok else (None, "rejected")

    started, cpu_started = time.perf_counter(), time.process_time()
    if threads == 1:
        results = [one(p) for p in params]
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(one, params))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    errors = {}
    for _, error in results:
        if error:
            errors[error] = errors.get(error, 0) + 1
    report("sdk-client", threads, [r for r, _ in results if r is not None], seconds, cpu_seconds, errors)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--scene", default="bench-scene")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sign", type=int, default=0, help="time this many signings instead")
    args = parser.parse_args()
    if args.sign:
        sign_bench(args.sign)
    else:
        verify_bench(args.endpoint, args.key_id, args.secret, args.scene, args.requests, args.threads)


if __name__ == "__main__":
    main()
