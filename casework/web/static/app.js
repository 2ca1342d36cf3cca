// casework's only script: no inline script anywhere (the Content-Security-Policy forbids it).
"use strict";

// every htmx request carries the session's form token
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content"); }
});

// a button or form with data-confirm asks first
document.addEventListener("submit", function (event) {
  var form = event.target;
  var ask = form.getAttribute("data-confirm") || (event.submitter && event.submitter.getAttribute("data-confirm"));
  if (ask && !window.confirm(ask)) { event.preventDefault(); }
}, true);

// a checkbox with data-select-all="name" ticks every checkbox of that name
document.addEventListener("change", function (event) {
  var box = event.target;
  var name = box.getAttribute && box.getAttribute("data-select-all");
  if (!name) { return; }
  document.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (other) {
    other.checked = box.checked;
  });
});

// 公民身份号码 (GB 11643-1999): checked as it is typed; the server checks again
var ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
var ID_CHECK = "10X98765432";

function idNumberProblem(value) {
  if (value === "") { return ""; }
  if (!/^\d{17}[\dXx]$/.test(value)) { return "身份证号码应为 18 位：17 位数字加 1 位数字或 X"; }
  var sum = 0;
  for (var i = 0; i < 17; i++) { sum += Number(value.charAt(i)) * ID_WEIGHTS[i]; }
  if (ID_CHECK.charAt(sum % 11) !== value.charAt(17).toUpperCase()) { return "身份证号码校验位不正确，请核对"; }
  var y = Number(value.substr(6, 4)), m = Number(value.substr(10, 2)), d = Number(value.substr(12, 2));
  var born = new Date(y, m - 1, d);
  if (born.getFullYear() !== y || born.getMonth() !== m - 1 || born.getDate() !== d) { return "身份证号码中的出生日期不存在"; }
  return "";
}

document.addEventListener("input", function (event) {
  var input = event.target;
  if (!input.hasAttribute || !input.hasAttribute("data-idnumber")) { return; }
  var problem = idNumberProblem(input.value.trim());
  input.setCustomValidity(problem);
  var note = document.getElementById(input.id + "-check");
  if (note) { note.textContent = problem; }
});

// numbers typed as text (inputmode + pattern, data-number): the workflow's min/max checked as typed, in Chinese;
// the server checks again (pages/newcase.py, casework.web.forms)
document.addEventListener("input", function (event) {
  var input = event.target;
  if (!input.hasAttribute || !input.hasAttribute("data-number")) { return; }
  var value = input.value.trim(), problem = "";
  var pattern = input.getAttribute("pattern");
  if (value !== "" && pattern && !new RegExp("^(?:" + pattern + ")$").test(value)) {
    problem = input.getAttribute("inputmode") === "numeric" ? "请填写整数，例如 3" : "请填写数字，例如 612.50（最多 6 位小数）";
  } else if (value !== "") {
    var n = Number(value), min = input.getAttribute("min"), max = input.getAttribute("max");
    if (min !== null && n < Number(min)) { problem = "不能小于 " + min; }
    if (max !== null && n > Number(max)) { problem = "不能大于 " + max; }
  }
  input.setCustomValidity(problem);
  var note = input.parentNode && input.parentNode.querySelector('.field-problem[data-field="' + input.name + '"]');
  if (note) { note.textContent = problem; }
});
