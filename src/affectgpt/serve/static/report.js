// The report page: upload a bench result JSON, POST /v1/report, show the returned HTML report.
"use strict";
const $ = (id) => document.getElementById(id);

async function render(event) {
  event.preventDefault();
  const file = $("result").files[0];
  const box = $("error");
  box.hidden = true;
  if (!file) { box.textContent = "choose a result JSON first"; box.hidden = false; return; }
  const form = new FormData();
  form.append("result", file);
  $("status").textContent = "rendering…";
  try {
    const response = await fetch("/v1/report", {method: "POST", body: form});
    const text = await response.text();
    if (!response.ok) {
      let err = {};
      try { err = JSON.parse(text).error || {}; } catch (_) { /* not JSON */ }
      box.textContent = `${response.status} ${err.code || "error"}: ${err.message || text}`;
      box.hidden = false;
      $("status").textContent = "failed";
      return;
    }
    $("report").srcdoc = text;
    $("report").hidden = false;
    $("status").textContent = "done";
  } catch (err) {
    box.textContent = "connection failed: " + err;
    box.hidden = false;
    $("status").textContent = "failed";
  }
}

$("upload").addEventListener("submit", render);
