// The gateway's page: plain JavaScript, no build step, nothing from outside this gateway. It calls the
// same public JSON API any client does (GET v1/models, POST v1/classify, POST v1/explain) and shows the
// API's own errors.
"use strict";

const $ = (id) => document.getElementById(id);

// One place that talks to the API: relative paths (the page may sit behind a path prefix), the key
// the user typed (only when the gateway asked for one), JSON in and out, round-trip time measured.
const api = {
  key: "",

  async call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.key) headers["X-API-Key"] = this.key;
    const started = performance.now();
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      const ms = performance.now() - started;
      return { ok: false, status: 0, body: null, path, requestId: "", ms, failure: String(error) };
    }
    let parsed = null;
    try {
      parsed = await response.json();
    } catch (error) {
      parsed = null; // not JSON (e.g. a proxy's HTML page, even with a 200): errorText says so
    }
    return {
      ok: response.ok,
      status: response.status,
      body: parsed,
      path,
      requestId: response.headers.get("X-Request-ID") || "",
      ms: performance.now() - started,
    };
  },
};

// A 2xx answer the page can draw: the gateway's JSON with its `field` list. Anything else (a proxy's HTML
// page, even with a 200) goes to errorText, never into code that would throw and leave the page blank.
function usable(reply, field) {
  return reply.ok && reply.body !== null && typeof reply.body === "object" && Array.isArray(reply.body[field]);
}

// "code: message" from the gateway's {"error": {"code", "message"}}, or what went wrong on the way.
function errorText(reply) {
  let text;
  if (reply.body && reply.body.error) text = `${reply.body.error.code}: ${reply.body.error.message}`;
  else if (reply.status === 0) text = `network error: ${reply.failure}`;
  else {
    const what = reply.body === null ? "not JSON" : "not the gateway's JSON";
    text = `unexpected answer (${what}) from ${reply.path} (HTTP ${reply.status})`;
  }
  return reply.requestId ? `${text} (request id ${reply.requestId})` : text;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // textContent only: texts and labels are never HTML
  return node;
}

function showMessage(target, kind, text) {
  target.className = `message ${kind}`;
  target.textContent = text;
  target.hidden = false;
}

const percent = (score) => `${(100 * score).toFixed(1)}%`;

// The key field appears only once the API answers 401: the page learns that keys are on the way any
// client does, and nothing about the keys themselves is ever sent to it.
function askForKey(reply) {
  if ($("key-field").hidden) {
    $("key-field").hidden = false;
    $("api-key").focus(); // only when it appears: never pull the cursor out of a field being typed in
  }
  return `${errorText(reply)}. This gateway needs an API key: enter it above.`;
}

// ---- models panel ------------------------------------------------------------------------------
let listedModels = [];
// a refresh and a key change can load the models at once and be answered out of order: only the latest
// request's answer is drawn
let modelsSequence = 0;

async function loadModels() {
  const sequence = ++modelsSequence;
  const reply = await api.call("GET", "v1/models");
  if (sequence !== modelsSequence) return;
  const message = $("models-message");
  if (!usable(reply, "models")) {
    showMessage(message, "error", reply.status === 401 ? askForKey(reply) : errorText(reply));
    return;
  }
  message.hidden = true;
  listedModels = reply.body.models;
  renderModels(listedModels);
  const model = $("model");
  if (!model.value && listedModels.length && !model.dataset.touched) model.value = listedModels[0].name;
  renderVersionChoices();
}

function renderModels(models) {
  const body = $("models").tBodies[0];
  const names = $("model-names");
  body.replaceChildren();
  names.replaceChildren();
  for (const model of models) {
    const option = element("option");
    option.value = model.name;
    names.append(option);
    const rows = model.error ? [{ version: "—", state: `${model.error.code}: ${model.error.message}` }] : model.versions;
    for (const version of rows.length ? rows : [{ version: "—", state: "no versions" }]) {
      const row = element("tr");
      row.append(element("td", "", model.name), element("td", "", String(version.version)));
      row.append(element("td", `state-${version.state}`, version.state));
      body.append(row);
    }
  }
  if (!models.length) {
    const row = element("tr");
    const cell = element("td", "", "this gateway serves any model name TF Serving has: type one");
    cell.colSpan = 3;
    row.append(cell);
    body.append(row);
  }
}

function renderVersionChoices() {
  const select = $("version");
  const chosen = select.value;
  const model = listedModels.find((m) => m.name === $("model").value);
  const versions = model && !model.error ? model.versions.filter((v) => v.state === "AVAILABLE") : [];
  select.replaceChildren(select.options[0]);
  for (const version of versions.map((v) => v.version).sort((a, b) => b - a)) {
    const option = element("option", "", String(version));
    option.value = String(version);
    select.append(option);
  }
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
}

// ---- classify ----------------------------------------------------------------------------------
function classifyRequest() {
  const texts = $("texts").value.split(/\r?\n/).filter((line) => line.trim() !== "");
  const request = { model: $("model").value.trim(), texts };
  const version = $("version").value;
  const label = $("version-label").value.trim();
  const topK = $("top-k").value.trim();
  if (version !== "") request.version = Number(version);
  if (label !== "") request.version_label = label;
  if (topK !== "") request.top_k = Number(topK);
  return request;
}

// Ctrl+Enter submits even while the button is disabled: as for the models, only the latest answer is drawn
let classifySequence = 0;

async function classify(event) {
  event.preventDefault();
  const sequence = ++classifySequence;
  const button = $("classify");
  const request = classifyRequest();
  button.disabled = true;
  $("message").hidden = true;
  $("answer").hidden = true;
  const reply = await api.call("POST", "v1/classify", request); // never rejects: failures are replies too
  if (sequence !== classifySequence) return;
  button.disabled = false;
  if (!usable(reply, "results")) {
    showMessage($("message"), "error", reply.status === 401 ? askForKey(reply) : errorText(reply));
    return;
  }
  const explainers = renderAnswer(reply, request.texts);
  // the first few texts are explained at once, one after another (each is a batch of its own on the model)
  for (const explain of explainers.slice(0, AUTO_EXPLAIN)) {
    if (sequence !== classifySequence) return; // a newer answer replaced this one
    await explain();
  }
}

// Draws the answer; returns, per classified text, the function that explains it (also its button's action).
function renderAnswer(reply, texts) {
  const answer = reply.body;
  $("answer-version").textContent = `${answer.model} v${answer.version}`;
  $("answer-request-id").textContent = reply.requestId || answer.request_id;
  $("answer-latency").textContent = `${Math.round(reply.ms)} ms`;
  const explainers = [];
  const items = answer.results.map((result, i) => {
    const item = renderResult(texts[i], result);
    if (result.label !== null) {
      explainers.push(explainer(item, { model: answer.model, text: texts[i], version: answer.version }));
    }
    return item;
  });
  $("results").replaceChildren(...items);
  $("answer").hidden = false;
  return explainers;
}

function renderResult(text, result) {
  const item = element("li", "result");
  if (result.label === null) {
    // a text with nothing to classify (e.g. only HTML tags): the API answers why, for that text alone
    item.append(renderText(text), element("p", "message error", `${result.error.code}: ${result.error.message}`));
    return item;
  }
  item.dataset.label = result.label;
  const head = element("div", "result-head");
  head.append(element("span", "result-label", result.label), element("span", "result-score", percent(result.score)));
  item.append(renderText(text), head, renderBars(result));
  return item;
}

// The one place a text is drawn; an explain answer draws its tokens in its place (renderTokens).
function renderText(text) {
  return element("p", "result-text", text);
}

function renderBars(result) {
  const bars = element("ol", "bars");
  for (const entry of result.top_k) {
    const row = element("li", entry.label === result.label ? "bar-row best" : "bar-row");
    const track = element("span", "bar-track");
    const fill = element("span", "bar-fill");
    fill.style.width = percent(entry.score);
    fill.setAttribute("role", "presentation");
    track.append(fill);
    row.append(element("span", "bar-name", entry.label === null ? "?" : entry.label), track);
    row.append(element("span", "bar-value", percent(entry.score)));
    bars.append(row);
  }
  return bars;
}

// ---- explain ------------------------------------------------------------------------------------
const AUTO_EXPLAIN = 5; // texts of an answer explained without a click; the rest have their "Why?" button

// The explain action of one result: its button, and the call that puts the highlighted tokens in place of
// the text (the typed text stays in the page, hidden: the tokens are what the model read, cleaned).
function explainer(item, request) {
  const button = element("button", "secondary explain", "Why? · 依据");
  button.type = "button";
  button.title = "highlight the words that made the model choose this label";
  item.querySelector(".result-head").append(button);
  const explain = async () => {
    if (button.disabled) return;
    button.disabled = true;
    const reply = await api.call("POST", "v1/explain", request);
    item.querySelector(".explain-note")?.remove();
    if (usable(reply, "tokens") && reply.body.label !== null) {
      const text = item.querySelector(".result-text");
      text.hidden = true;
      text.after(renderTokens(reply.body));
      button.remove();
      return;
    }
    button.disabled = false; // a failure (e.g. a text too long to explain) says why; the button may try again
    item.append(element("p", "explain-note", `explain: ${errorText(reply)}`));
  };
  button.addEventListener("click", explain);
  return explain;
}

const points = (importance) => `${importance < 0 ? "\u2212" : "+"}${Math.abs(100 * importance).toFixed(1)}`;

// Each token coloured by the sign of its importance (for the label: green, against it: red, each with its
// own underline so colour is not the only cue) and shaded by its size against the largest in the text;
// the value is in the title (hover) and, for screen readers, in text of its own.
function renderTokens(explanation) {
  const line = element("p", "tokens");
  const largest = Math.max(0.01, ...explanation.tokens.map((t) => Math.abs(t.importance)));
  for (const { token, importance } of explanation.tokens) {
    const side = importance > 0.0005 ? "for" : importance < -0.0005 ? "against" : "neutral";
    const span = element("span", `token ${side}`, token);
    span.style.setProperty("--strength", (Math.abs(importance) / largest).toFixed(3));
    span.dataset.importance = String(importance);
    const value = `${points(importance)} points ${side === "against" ? "against" : "for"} ${explanation.label}`;
    span.title = `${token}: ${value}`;
    span.append(element("span", "visually-hidden", ` (${value})`));
    line.append(span);
  }
  return line;
}

// ---- wiring ------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("classify-form").addEventListener("submit", classify);
  $("texts").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("classify-form").requestSubmit();
  });
  $("model").addEventListener("change", renderVersionChoices);
  // the first listed model fills an empty model field only until the user has been in it
  $("model").addEventListener("focus", () => ($("model").dataset.touched = "yes"), { once: true });
  $("version").addEventListener("change", () => {
    if ($("version").value !== "") $("version-label").value = ""; // a version or a label, not both
  });
  $("version-label").addEventListener("input", () => {
    if ($("version-label").value.trim() !== "") $("version").value = "";
  });
  $("api-key").addEventListener("input", () => {
    api.key = $("api-key").value;
  });
  $("api-key").addEventListener("change", loadModels);
  $("refresh").addEventListener("click", loadModels);
  loadModels();
});
