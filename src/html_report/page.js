// The per-domain table of the report: rows come from #table-data, are filtered, sorted and
// shown a page at a time, and every value goes into the page as text (never as markup).
(function () {
  "use strict";
  var PAGE = 100;
  var data = JSON.parse(document.getElementById("table-data").textContent);
  var nav = JSON.parse(document.getElementById("nav-data").textContent);
  var navElement = document.getElementById("nav");
  nav.forEach(function (entry) {
    var link = document.createElement("a");
    link.href = "#" + entry[0];
    link.textContent = entry[1];
    navElement.appendChild(link);
  });
  var rows = data.rows;
  var actionable = rows.filter(function (r) { return r[0] < data.actionable_below; }).length;
  var state = { view: actionable > 0 ? "actionable" : "all", filter: "", key: 0, direction: 1, page: 0 };

  var view = document.getElementById("view");
  function option(value, label) {
    var element = document.createElement("option");
    element.value = value;
    element.textContent = label;
    view.appendChild(element);
  }
  option("actionable", "domains that need action");
  option("all", "all domains in the table");
  data.priorities.forEach(function (label, index) { option(String(index), (index + 1) + ". " + label); });
  view.value = state.view;

  function text(row) {
    return (row[1] + " " + row[3] + " " + (row[4] || "") + " " + row[5] + " " + row[6].join(" ")).toLowerCase();
  }
  function keep(row) {
    if (state.view === "actionable" && row[0] >= data.actionable_below) { return false; }
    if (state.view !== "actionable" && state.view !== "all" && String(row[0]) !== state.view) { return false; }
    return state.filter === "" || text(row).indexOf(state.filter) >= 0;
  }
  function value(row) {
    var v = row[state.key];
    if (Array.isArray(v)) { return v.length; }
    return v;
  }
  function compare(a, b) {
    var x = value(a), y = value(b);
    if (x === y) { return a[0] - b[0]; }
    if (x === null || x === undefined) { return 1; }
    if (y === null || y === undefined) { return -1; }
    return (x < y ? -1 : 1) * state.direction;
  }
  function cell(tr, content, className) {
    var td = document.createElement("td");
    td.textContent = content === null || content === undefined ? "" : String(content);
    if (className) { td.className = className; }
    tr.appendChild(td);
  }
  function render() {
    var shown = rows.filter(keep).sort(compare);
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var body = document.getElementById("domain-rows");
    var fragment = document.createDocumentFragment();
    shown.slice(state.page * PAGE, (state.page + 1) * PAGE).forEach(function (row) {
      var tr = document.createElement("tr");
      tr.className = "p" + row[0];
      cell(tr, (row[0] + 1) + ". " + data.priorities[row[0]]);
      cell(tr, row[1]);
      cell(tr, row[2]);
      cell(tr, row[3]);
      cell(tr, row[4]);
      cell(tr, row[5]);
      cell(tr, row[6].join(" "), "issues");
      cell(tr, row[7].map(function (i) { return data.recommendations[i]; }).join(" "), "recs");
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    document.getElementById("table-info").textContent = shown.length + " rows, page " + (state.page + 1) + " of " + pages;
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
    document.querySelectorAll("#domain-table th").forEach(function (th) {
      var sorted = Number(th.getAttribute("data-key")) === state.key;
      th.classList.toggle("sorted", sorted);
      th.classList.toggle("desc", sorted && state.direction < 0);
    });
  }
  view.addEventListener("change", function () { state.view = view.value; state.page = 0; render(); });
  document.getElementById("filter").addEventListener("input", function (event) {
    state.filter = event.target.value.trim().toLowerCase();
    state.page = 0;
    render();
  });
  document.getElementById("prev").addEventListener("click", function () { state.page -= 1; render(); });
  document.getElementById("next").addEventListener("click", function () { state.page += 1; render(); });
  document.querySelectorAll("#domain-table th").forEach(function (th) {
    th.addEventListener("click", function () {
      var key = Number(th.getAttribute("data-key"));
      state.direction = key === state.key ? -state.direction : 1;
      state.key = key;
      state.page = 0;
      render();
    });
  });
  render();
}());
