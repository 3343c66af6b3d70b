document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, column) {
    var button = th.querySelector("button");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var descending = th.getAttribute("aria-sort") === "ascending";
      table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var body = table.tBodies[0];
      var numeric = th.classList.contains("num");
      var key = function (row) {
        var text = row.cells[column] ? row.cells[column].textContent : "";
        return numeric ? parseFloat(text.replace(/[^0-9.eE+-]/g, "")) || 0 : text.toLowerCase();
      };
      Array.prototype.slice.call(body.rows)
        .sort(function (a, b) {
          var x = key(a), y = key(b);
          var order = x < y ? -1 : x > y ? 1 : 0;
          return descending ? -order : order;
        })
        .forEach(function (row) { body.appendChild(row); });
    });
  });
});
