"use strict";
// The report's one script (allowed by its hash in the page's Content-Security-Policy): timeline
// filters, expand/collapse, and every section opened for printing. It reads the page, never data
// built into code, and makes no request.
(function () {
  function filterTimeline(box) {
    var wanted = [];
    box.querySelectorAll("select[data-filter]").forEach(function (select) {
      if (select.value !== "") wanted.push([select.getAttribute("data-filter"), select.value]);
    });
    var evidenceOnly = box.querySelector("input[data-filter-evidence]");
    var onlyEvidence = evidenceOnly !== null && evidenceOnly.checked;
    var shown = 0;
    box.querySelectorAll("tbody tr").forEach(function (row) {
      var keep = !onlyEvidence || row.classList.contains("evidence");
      for (var i = 0; keep && i < wanted.length; i++) {
        keep = row.getAttribute("data-" + wanted[i][0]) === wanted[i][1];
      }
      row.hidden = !keep;
      if (keep) shown++;
    });
    var counter = box.querySelector(".shown");
    if (counter !== null) counter.textContent = String(shown);
  }

  document.querySelectorAll(".timeline").forEach(function (box) {
    box.querySelectorAll("select[data-filter], input[data-filter-evidence]").forEach(function (control) {
      control.addEventListener("change", function () { filterTimeline(box); });
    });
    var reset = box.querySelector("button.reset");
    if (reset !== null) {
      reset.addEventListener("click", function () {
        box.querySelectorAll("select[data-filter]").forEach(function (s) { s.value = ""; });
        box.querySelectorAll("input[data-filter-evidence]").forEach(function (c) { c.checked = false; });
        filterTimeline(box);
      });
    }
  });

  document.querySelectorAll("button[data-expand]").forEach(function (button) {
    button.addEventListener("click", function () {
      var section = button.closest("section");
      var open = button.getAttribute("data-expand") === "open";
      if (section !== null) {
        section.querySelectorAll("details.finding").forEach(function (d) { d.open = open; });
      }
    });
  });

  // Printed, every finding is open (with its first record; the others as one line each) and the
  // timeline as filtered; afterwards the page is as the reader left it.
  var openedForPrint = [];
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details.finding:not([open])").forEach(function (d) {
      d.open = true;
      openedForPrint.push(d);
    });
  });
  window.addEventListener("afterprint", function () {
    openedForPrint.forEach(function (d) { d.open = false; });
    openedForPrint = [];
  });
})();
