/* Mazkira's web form for a business's own site: posts each form to the business's intake
 * endpoint with its key. One fill of the form carries one id, so a double click, or sending
 * again after a network error, makes one lead. The form's language (its lang) is sent as
 * Accept-Language, so a refusal reads as the form does; it is shown beside its field, and
 * what was typed stays. */
(function () {
  "use strict";
  var TEXT = {
    he: { sending: "שולח…", thanks: "תודה! נחזור אליך בהקדם.", failed: "השליחה נכשלה. נסו שוב." },
    en: { sending: "Sending…", thanks: "Thank you! We will get back to you soon.", failed: "Sending failed. Please try again." },
  };

  function newId() {
    if (window.crypto && window.crypto.randomUUID) return "web-" + window.crypto.randomUUID();
    return "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  function attach(form) {
    if (form.dataset.mazkiraReady) return;
    form.dataset.mazkiraReady = "1";
    var lang = (form.lang || document.documentElement.lang || "he").slice(0, 2);
    var words = TEXT[lang] || TEXT.en;
    var status = form.querySelector("[data-mazkira-status]");
    var fillId = newId();
    var say = function (text) { if (status) status.textContent = text; };
    var clearRefusals = function () {
      form.querySelectorAll("[data-mazkira-error]").forEach(function (note) { note.remove(); });
      form.querySelectorAll("[aria-invalid]").forEach(function (field) {
        field.removeAttribute("aria-invalid");
        field.removeAttribute("aria-describedby");
      });
    };
    var refuse = function (message, name) {
      var field = name && form.elements[name];
      if (!field || !field.insertAdjacentElement) { say(message); return; }
      var note = document.createElement("span");
      note.id = "mazkira-error-" + name + "-" + fillId;
      note.setAttribute("data-mazkira-error", name);
      note.setAttribute("role", "alert");
      note.style.display = "block";
      note.textContent = message;
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", note.id);
      field.insertAdjacentElement("afterend", note);
      field.focus();
      say("");
    };
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (form.dataset.mazkiraBusy) return;
      var fields = { source: window.location.hostname, external_id: fillId };
      new FormData(form).forEach(function (value, name) { if (typeof value === "string") fields[name] = value; });
      form.dataset.mazkiraBusy = "1";
      clearRefusals();
      say(words.sending);
      fetch(form.dataset.mazkiraForm, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "X-Intake-Key": form.dataset.mazkiraKey,
          "Accept-Language": lang,
        },
        body: JSON.stringify(fields),
      })
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, body: body }; });
        })
        .then(function (answer) {
          if (!answer.ok) {
            var body = answer.body || {};
            if (body.error) { refuse(body.error, body.field); return; }
            throw new Error(words.failed);
          }
          form.reset();
          fillId = newId();
          say(words.thanks);
        })
        .catch(function () { say(words.failed); })
        .then(function () { delete form.dataset.mazkiraBusy; });
    });
  }

  function attachAll() {
    document.querySelectorAll("form[data-mazkira-form]").forEach(attach);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", attachAll);
  else attachAll();
})();
