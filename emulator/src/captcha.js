// A stand-in for Alibaba Cloud's AliyunCaptcha.js, served by the emulator at
// /emulator/captcha.js. It offers the same `initAliyunCaptcha(options)` entry point and reads
// the same `window.AliyunCaptchaConfig`, so a page written to Alibaba's guides runs unchanged
// offline, in either architecture:
//   V3: the widget checks the challenge itself: `success(captchaVerifyParam)` when it passes,
//       then the page sends its own request; `fail(result)` when the widget refuses (a puzzle
//       got wrong, a risk the widget detects), and the widget refreshes for another try;
//   V2: `captchaVerifyCallback(captchaVerifyParam)` returns {captchaResult, bizResult}, then
//       `onBizResultCallback(bizResult)`; every verdict comes from the server.
// Instead of a puzzle it shows a "Verify" control with a choice of outcome, and mints the
// param from the emulator (V3 or V2 format to match the page), which answers only the pages it
// was told about (--allow-origin). `UserCertifyId` (PREFIX_ and ten letters or digits) comes
// back as the verdict's CertifyId; `EncryptedSceneId` counts in V3 only, as in encryption mode.
(function () {
  "use strict";
  const origin = new URL(document.currentScript.src).origin;
  const REGIONS = ["cn", "sgp", "ga"];
  const MODES = ["popup", "embed"];
  // [value, label]: "fail" is a puzzle the person got wrong (F015). In V3 the widget decides
  // every one but "pass" and calls `fail`; in V2 they are verdicts the service gives the param.
  const OUTCOMES = [
    ["T001", "pass"],
    ["fail", "get the puzzle wrong"],
    ["F001", "look like an attack (F001)"],
    ["F009", "use an emulated device (F009)"],
    ["F010", "come too often from one IP (F010)"],
    ["F024", "click like a script (F024)"],
  ];
  // The one instance the client FAQ allows per page.
  let live = null;

  function element(tag, props, children) {
    const node = Object.assign(document.createElement(tag), props || {});
    (children || []).forEach((child) => node.append(child));
    return node;
  }

  function call(callback, ...args) {
    return typeof callback === "function" ? callback(...args) : undefined;
  }

  window.initAliyunCaptcha = function (options) {
    options = options || {};
    const config = window.AliyunCaptchaConfig || {};
    const failInit = (code, msg) => {
      console.error("AliyunCaptcha: " + code + ": " + msg);
      call(options.onError, { code, msg });
    };
    // The real widget sends its init request to https://<prefix>.captcha-open.aliyuncs.com:
    // without a prefix it cannot start, and nothing shows.
    if (typeof config.prefix !== "string" || config.prefix.trim() === "") {
      failInit("IllegalUserTag", "window.AliyunCaptchaConfig.prefix is missing; set {region, prefix} before loading AliyunCaptcha.js");
      return;
    }
    const region = config.region || "cn";
    if (!REGIONS.includes(region)) {
      failInit("IllegalRegion", "AliyunCaptchaConfig.region must be one of " + REGIONS.join(", "));
      return;
    }
    const mode = options.mode || "popup";
    if (!MODES.includes(mode)) {
      failInit("IllegalParameter", "mode must be popup or embed");
      return;
    }
    const host = document.querySelector(options.element);
    const button = document.querySelector(options.button);
    if (!host || !button) {
      // What the real widget throws when `element` or `button` is not in the page.
      throw new TypeError("Cannot set properties of undefined (setting 'onclick')");
    }
    if (live) {
      console.error("AliyunCaptcha: initAliyunCaptcha was called again without destroyCaptcha(): "
        + "Captcha 2.0 supports one instance per page (client FAQ); verifications will misbehave.");
    }
    const v2 = typeof options.captchaVerifyCallback === "function";
    // Alibaba's format: the identity prefix, "_", ten letters or digits.
    const certifyId = options.UserCertifyId;
    const ownPrefix = typeof certifyId === "string" && certifyId.startsWith(config.prefix + "_");
    if (certifyId !== undefined
      && !(ownPrefix && /^[A-Za-z0-9]{10}$/.test(certifyId.slice(config.prefix.length + 1)))) {
      failInit("IllegalCertifyId", "UserCertifyId must be <prefix>_ and ten letters or digits, e.g. " + config.prefix + "_7G47iByes3");
      return;
    }

    const select = element("select", { className: "captcha-verdict", title: "what happens" },
      OUTCOMES.map(([value, label]) => element("option", { value, textContent: label })));
    const verify = element("button", { type: "button", className: "captcha-verify", textContent: "Verify" });
    const replay = element("button", {
      type: "button", className: "captcha-replay", textContent: "Replay last param", disabled: true,
    });
    const close = element("button", { type: "button", className: "captcha-close", textContent: "×", title: "close" });
    const status = element("span", { className: "captcha-status", role: "status" });
    const panel = element("div", { className: "emulated-captcha" }, [
      element("strong", { textContent: "Emulated captcha (" + (v2 ? "V2" : "V3") + ") " }),
      select, verify, replay, status,
    ]);
    let mask = null;
    let root;
    if (mode === "popup") {
      panel.append(close);
      mask = element("div", { id: "aliyunCaptcha-mask", hidden: true });
      Object.assign(mask.style, { position: "fixed", inset: "0", background: "rgba(0,0,0,.35)", zIndex: "999" });
      root = element("div", { id: "aliyunCaptcha-window-popup", hidden: true }, [panel]);
      Object.assign(root.style, {
        position: "fixed", left: "50%", top: "30%", transform: "translate(-50%, -50%)", zIndex: "1000",
        background: "#fff", borderRadius: "8px", boxShadow: "0 6px 30px rgba(0,0,0,.3)", padding: ".5rem",
      });
      host.replaceChildren(mask, root);
    } else {
      root = panel;
      host.replaceChildren(panel);
    }

    let last = null;
    let destroyed = false;
    const instance = {
      show() {
        if (destroyed) return;
        status.textContent = "";
        if (mask) mask.hidden = false;
        root.hidden = false;
      },
      hide() {
        if (mask) mask.hidden = true;
        if (mode === "popup") root.hidden = true;
      },
      refresh() {
        status.textContent = "";
        select.value = "T001";
      },
      destroyCaptcha() {
        destroyed = true;
        button.removeEventListener("click", onButton);
        host.replaceChildren();
        if (live === instance) live = null;
      },
    };

    async function deliver(param) {
      last = param;
      replay.disabled = false;
      if (!v2) {
        status.textContent = "verified";
        instance.hide();
        call(options.success, param);
        return;
      }
      status.textContent = "checking…";
      let result;
      try {
        result = await options.captchaVerifyCallback(param);
      } catch (error) {
        status.textContent = "captchaVerifyCallback failed";
        call(options.onError, { code: "CallbackError", msg: String(error) });
        return;
      }
      if (result && result.captchaResult) {
        status.textContent = "verified";
        instance.hide();
        call(options.onBizResultCallback, result.bizResult);
      } else {
        // The real widget refreshes its puzzle here.
        instance.refresh();
        status.textContent = "not verified: try again";
      }
    }

    async function mint(verdict) {
      const body = { scene: options.SceneId, verdict, format: v2 ? "v2" : "v3" };
      // Encryption mode is V3's: a V2 widget sends no EncryptedSceneId.
      if (options.EncryptedSceneId && !v2) body.encryptedSceneId = options.EncryptedSceneId;
      if (certifyId !== undefined) body.userCertifyId = certifyId;
      // text/plain keeps this a simple cross-origin request (no preflight).
      const response = await fetch(origin + "/emulator/params", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.Message || response.status);
      return answer.captchaVerifyParam;
    }

    verify.addEventListener("click", async () => {
      const outcome = select.value;
      const code = outcome === "fail" ? "F015" : outcome;
      if (code !== "T001" && !v2) {
        // V3 decides in the widget: no param, the page hears `fail`, and the widget refreshes
        // for another try.
        instance.refresh();
        status.textContent = "not verified: try again";
        call(options.fail, { verifyResult: false, verifyCode: code });
        return;
      }
      status.textContent = "minting…";
      let param;
      try {
        // V2 checks on the server: the param carries the failure.
        param = await mint(code);
      } catch (error) {
        // The emulator answers a page it does not allow without CORS headers, so that the
        // page cannot read why: fetch fails as if the emulator were down.
        const unreadable = error instanceof TypeError;
        status.textContent = unreadable
          ? "the emulator could not be reached, or does not allow this page (--allow-origin "
            + window.location.origin + ")"
          : "the emulator refused: " + error.message;
        call(options.onError, { code: unreadable ? "NetworkError" : "EmulatorError", msg: String(error) });
        return;
      }
      await deliver(param);
    });
    replay.addEventListener("click", () => last && deliver(last));
    close.addEventListener("click", () => {
      instance.hide();
      call(options.onClose);
    });
    function onButton(event) {
      event.preventDefault();
      instance.show();
    }
    button.addEventListener("click", onButton);

    live = instance;
    call(options.getInstance, instance);
  };
})();
