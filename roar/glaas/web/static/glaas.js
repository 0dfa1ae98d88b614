// The pages work without this script; it adds a copy button and zooms the DAG.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source.textContent;
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { selectAndCopy(source) && done(); });
      } else if (selectAndCopy(source)) {
        done();
      }
    });
  });

  function selectAndCopy(node) {   // http on another host has no clipboard API
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }

  var svg = document.getElementById("dag");
  var zoom = document.querySelector(".zoom");
  if (!svg || !zoom) return;
  var natural = parseFloat(svg.getAttribute("width"));
  var scale = 1;
  var canvas = document.getElementById("canvas");
  function apply() {
    svg.classList.add("zoomed");
    svg.setAttribute("width", String(Math.round(natural * scale)));
    svg.removeAttribute("height");
  }
  function fit() {
    scale = Math.min(1, (canvas.clientWidth - 4) / natural);
    apply();
  }
  zoom.hidden = false;
  if (natural > canvas.clientWidth) {   // fit a wide DAG, but not below a readable size (then pan)
    scale = Math.max((canvas.clientWidth - 4) / natural, 0.65);
    apply();
  }
  zoom.addEventListener("click", function (event) {
    var what = event.target.getAttribute("data-zoom");
    if (what === "in") { scale = Math.min(scale * 1.25, 4); apply(); }
    else if (what === "out") { scale = Math.max(scale / 1.25, 0.1); apply(); }
    else if (what === "fit") { fit(); }
  });
});
