// A stand-in for Alibaba Cloud's AliyunCaptcha.js, served by the emulator at
// /emulator/captcha.js. It offers the same `initAliyunCaptcha(options)` entry point, so a
// page written for the real widget runs unchanged offline. Instead of a puzzle it shows a
// "Verify" control, with a choice of verdict, that mints a param from the emulator.
(function () {
  "use strict";
  const origin = new URL(document.currentScript.src).origin;
  const verdicts = [
    ["T001", "pass"],
    ["F015", "fail the challenge (F015)"],
    ["F001", "look like an attack (F001)"],
    ["F009", "use an emulated device (F009)"],
    ["F010", "come too often from one IP (F010)"],
  ];

  function element(tag, props, children) {
    const node = Object.assign(document.createElement(tag), props || {});
    (children || []).forEach((child) => node.append(child));
    return node;
  }

  window.initAliyunCaptcha = function (options) {
    const host = document.querySelector(options.element);
    const button = document.querySelector(options.button);
    if (!host || !button) {
      throw new Error("initAliyunCaptcha: element and button must exist");
    }
    const select = element("select", { className: "captcha-verdict", title: "verdict to mint" },
      verdicts.map(([code, label]) => element("option", { value: code, textContent: label })));
    const verify = element("button", { type: "button", className: "captcha-verify", textContent: "Verify" });
    const replay = element("button", {
      type: "button", className: "captcha-replay", textContent: "Replay last param", disabled: true,
    });
    const status = element("span", { className: "captcha-status" });
    const panel = element("div", { className: "emulated-captcha", hidden: options.mode !== "embed" }, [
      element("strong", { textContent: "Emulated captcha " }), select, verify, replay, status,
    ]);
    host.replaceChildren(panel);
    let last = null;

    async function complete(param) {
      last = param;
      replay.disabled = false;
      status.textContent = "checking…";
      const { captchaResult, bizResult } = await options.captchaVerifyCallback(param);
      if (captchaResult) {
        status.textContent = "verified";
        if (options.mode !== "embed") panel.hidden = true;
        if (options.onBizResultCallback) options.onBizResultCallback(bizResult);
      } else {
        // The real widget refreshes its puzzle here; this one waits for another try.
        status.textContent = "not verified: try again";
      }
    }

    verify.addEventListener("click", async () => {
      status.textContent = "minting…";
      // text/plain keeps this a simple cross-origin request (no preflight).
      const response = await fetch(origin + "/emulator/params", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: JSON.stringify({ scene: options.SceneId, verdict: select.value }),
      });
      const answer = await response.json();
      if (!response.ok) {
        status.textContent = "emulator: " + answer.Message;
        return;
      }
      await complete(answer.captchaVerifyParam);
    });
    replay.addEventListener("click", () => last && complete(last));
    button.addEventListener("click", (event) => {
      event.preventDefault();
      panel.hidden = false;
      status.textContent = "";
    });
    if (options.getInstance) {
      options.getInstance({ show: () => { panel.hidden = false; }, hide: () => { panel.hidden = true; } });
    }
  };
})();
