// Switchyard cost dashboard. Reads GET /v1/switchyard/costs with an admin
// key that the user enters and that is kept in sessionStorage only. All
// text from the API is inserted with textContent, never as HTML.
(function () {
  'use strict';

  const STORAGE_KEY = 'switchyard.adminKey';
  const API = '/v1/switchyard/costs';
  const LOCAL_KINDS = new Set(['local', 'selfhosted']);
  const CHART_MAX_GROUPS = 20;
  const GROUP_NAMES = { team: 'Team', model: 'Model', backend: 'Backend', key: 'Key', provider: 'Provider', kind: 'Kind' };

  const $ = (id) => document.getElementById(id);
  const el = {
    login: $('login'), loginForm: $('login-form'), keyInput: $('key'), loginMessage: $('login-message'),
    app: $('app'), logout: $('logout'), controls: $('controls'), range: $('range'), custom: $('custom'),
    from: $('from'), to: $('to'), group: $('group'), csv: $('csv'), rangeLabel: $('range-label'), error: $('error'),
    cost: $('card-cost'), savings: $('card-savings'), requests: $('card-requests'), tokens: $('card-tokens'),
    tokensDetail: $('card-tokens-detail'), local: $('card-local'), groupName: $('group-name'), groupCol: $('group-col'),
    chart: $('chart'), empty: $('empty'), table: $('totals'),
  };

  let key = '';
  try { key = sessionStorage.getItem(STORAGE_KEY) || ''; } catch (e) { key = ''; }
  let chart = null;
  let loadSeq = 0;

  class AuthError extends Error {}

  // ---- formatting -------------------------------------------------------

  const intFmt = new Intl.NumberFormat();
  const pctFmt = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

  function groupDigits(s) { return s.replace(/\B(?=(\d{3})+(?!\d))/g, ','); }

  // usd shows the API's exact decimal string with grouped thousands.
  function usd(s) {
    s = String(s || '0');
    const neg = s.startsWith('-');
    if (neg) s = s.slice(1);
    const [whole, frac] = s.split('.');
    return (neg ? '-$' : '$') + groupDigits(whole) + (frac ? '.' + frac : '');
  }

  function axisUSD(v) {
    if (v === 0) return '$0';
    const a = Math.abs(v);
    if (a >= 1000) return '$' + intFmt.format(Math.round(v));
    if (a >= 1) return '$' + v.toFixed(2);
    return '$' + Number(v.toPrecision(2)).toString();
  }

  function groupLabel(g) { return g === '' ? '(none)' : g; }

  function shorten(s, n) { return s.length > n ? s.slice(0, n - 1) + '…' : s; }

  // ---- time range -------------------------------------------------------

  function day(d, plus) { return new Date(d.getFullYear(), d.getMonth(), d.getDate() + (plus || 0)); }

  function isoDate(d) {
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate());
  }

  function parseDate(v) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v || '');
    return m ? new Date(+m[1], +m[2] - 1, +m[3]) : null;
  }

  // range is the selected [from, to) in local days, as RFC 3339 instants.
  function range() {
    const today = day(new Date());
    let from;
    let to = day(today, 1);
    switch (el.range.value) {
      case 'today': from = today; break;
      case '7d': from = day(today, -6); break;
      case 'custom': {
        from = parseDate(el.from.value);
        const last = parseDate(el.to.value);
        if (!from || !last) return { error: 'Choose both a from and a to date.' };
        if (last < from) return { error: 'The to date is before the from date.' };
        to = day(last, 1);
        break;
      }
      default: from = new Date(today.getFullYear(), today.getMonth(), 1);
    }
    const lastDay = day(to, -1);
    return {
      from: from.toISOString(), to: to.toISOString(), first: isoDate(from), last: isoDate(lastDay),
      label: isoDate(from) === isoDate(lastDay) ? isoDate(from) : isoDate(from) + ' – ' + isoDate(lastDay),
    };
  }

  // ---- API --------------------------------------------------------------

  async function api(params) {
    const resp = await fetch(API + '?' + new URLSearchParams(params).toString(), {
      headers: { Authorization: 'Bearer ' + key }, cache: 'no-store', credentials: 'omit',
    });
    if (resp.ok) return resp;
    let message = '';
    try { message = (await resp.json()).error.message || ''; } catch (e) { /* not JSON */ }
    if (resp.status === 401) throw new AuthError(message || 'The key was rejected.');
    throw new Error(message || ('The gateway answered HTTP ' + resp.status + '.'));
  }

  async function totals(r, groupBy) {
    const body = await (await api({ from: r.from, to: r.to, group_by: groupBy })).json();
    return Array.isArray(body.totals) ? body.totals : [];
  }

  // ---- views ------------------------------------------------------------

  function setState(s) { document.body.dataset.state = s; }

  function showError(msg) {
    el.error.textContent = msg;
    el.error.hidden = !msg;
  }

  function clearData() {
    if (chart) { chart.destroy(); chart = null; }
    el.chart.replaceChildren();
    el.table.tBodies[0].replaceChildren();
    if (el.table.tFoot) el.table.deleteTFoot();
    for (const c of [el.cost, el.savings, el.requests, el.tokens, el.local]) c.textContent = '–';
    el.tokensDetail.textContent = '';
    el.empty.hidden = true;
    delete document.body.dataset.rendered;
  }

  function showLogin(message) {
    loadSeq++;
    key = '';
    try { sessionStorage.removeItem(STORAGE_KEY); } catch (e) { /* storage disabled */ }
    clearData();
    showError('');
    el.app.hidden = true;
    el.logout.hidden = true;
    el.login.hidden = false;
    el.loginMessage.textContent = message || '';
    el.loginMessage.hidden = !message;
    el.keyInput.value = '';
    setState('login');
    el.keyInput.focus();
  }

  function showApp() {
    el.login.hidden = true;
    el.app.hidden = false;
    el.logout.hidden = false;
    load();
  }

  function renderCards(all, kinds) {
    const t = all[0] || { requests: 0, prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, cost_usd: '0', savings_usd: '0' };
    el.cost.textContent = usd(t.cost_usd);
    el.cost.dataset.exact = t.cost_usd;
    el.savings.textContent = usd(t.savings_usd);
    el.requests.textContent = intFmt.format(t.requests);
    el.tokens.textContent = intFmt.format(t.prompt_tokens + t.completion_tokens);
    el.tokensDetail.textContent = intFmt.format(t.prompt_tokens) + ' prompt (' + intFmt.format(t.cached_tokens) +
      ' cached) · ' + intFmt.format(t.completion_tokens) + ' completion';
    let local = 0;
    let n = 0;
    for (const k of kinds) {
      n += k.requests;
      if (LOCAL_KINDS.has(k.group)) local += k.requests;
    }
    el.local.textContent = n ? pctFmt.format(local / n) : '–';
  }

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function renderTable(rows, all) {
    const total = all[0];
    const totalCost = total ? parseFloat(total.cost_usd) : 0;
    const body = el.table.tBodies[0];
    body.replaceChildren();
    for (const t of rows) {
      const tr = body.insertRow();
      tr.dataset.group = t.group;
      cell(tr, groupLabel(t.group), t.group === '' ? 'none' : '');
      cell(tr, intFmt.format(t.requests), 'num');
      cell(tr, intFmt.format(t.prompt_tokens), 'num');
      cell(tr, intFmt.format(t.completion_tokens), 'num');
      cell(tr, intFmt.format(t.cached_tokens), 'num');
      cell(tr, usd(t.cost_usd), 'num');
      cell(tr, usd(t.savings_usd), 'num');
      cell(tr, totalCost > 0 ? pctFmt.format(parseFloat(t.cost_usd) / totalCost) : '–', 'num');
    }
    if (el.table.tFoot) el.table.deleteTFoot();
    if (total && rows.length > 1) {
      const tr = el.table.createTFoot().insertRow();
      cell(tr, 'Total');
      cell(tr, intFmt.format(total.requests), 'num');
      cell(tr, intFmt.format(total.prompt_tokens), 'num');
      cell(tr, intFmt.format(total.completion_tokens), 'num');
      cell(tr, intFmt.format(total.cached_tokens), 'num');
      cell(tr, usd(total.cost_usd), 'num');
      cell(tr, usd(total.savings_usd), 'num');
      cell(tr, '', 'num');
    }
  }

  function chartWidth() { return Math.max(280, el.chart.clientWidth || 600); }

  function renderChart(rows) {
    if (chart) { chart.destroy(); chart = null; }
    el.chart.replaceChildren();
    el.empty.hidden = rows.length > 0;
    if (!rows.length || typeof uPlot === 'undefined') return;
    const shown = rows.slice(0, CHART_MAX_GROUPS);
    const labels = shown.map((t) => shorten(groupLabel(t.group), 18));
    const xs = shown.map((_, i) => i);
    const ys = shown.map((t) => parseFloat(t.cost_usd) || 0);
    const accent = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#2f6fde';
    const fill = getComputedStyle(document.documentElement).getPropertyValue('--accent-soft').trim() || accent;
    chart = new uPlot({
      width: chartWidth(),
      height: 300,
      legend: { show: false },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: {
        x: { time: false, range: () => [-0.5, shown.length - 0.5] },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { splits: () => xs, values: (u, splits) => splits.map((i) => labels[i] || ''), grid: { show: false }, gap: 6 },
        { values: (u, splits) => splits.map(axisUSD), size: 70 },
      ],
      series: [
        {},
        { label: 'Cost (USD)', stroke: accent, fill: fill, width: 1, points: { show: false },
          paths: uPlot.paths.bars({ size: [0.6, 90] }) },
      ],
    }, [xs, ys], el.chart);
    if (rows.length > shown.length) {
      const p = document.createElement('p');
      p.className = 'muted small';
      p.textContent = 'Showing the ' + shown.length + ' most expensive of ' + rows.length + ' groups; the table has them all.';
      el.chart.appendChild(p);
    }
  }

  async function load() {
    const seq = ++loadSeq;
    const group = el.group.value;
    const r = range();
    if (r.error) { showError(r.error); return; }
    el.rangeLabel.textContent = r.label + ' (local time)';
    el.groupName.textContent = GROUP_NAMES[group].toLowerCase();
    el.groupCol.textContent = GROUP_NAMES[group];
    setState('loading');
    try {
      const [all, kinds, grouped] = await Promise.all([
        totals(r, ''), totals(r, 'kind'), group === 'kind' ? null : totals(r, group),
      ]);
      if (seq !== loadSeq) return;
      const rows = grouped || kinds;
      showError('');
      renderCards(all, kinds);
      renderTable(rows, all);
      renderChart(rows);
      document.body.dataset.rendered = group;
      setState('ready');
    } catch (e) {
      if (seq !== loadSeq) return;
      if (e instanceof AuthError) { showLogin('The gateway rejected the key: ' + e.message); return; }
      clearData();
      showError(e.message || String(e));
      setState('error');
    }
  }

  async function downloadCSV() {
    const r = range();
    if (r.error) { showError(r.error); return; }
    el.csv.disabled = true;
    try {
      const blob = await (await api({ from: r.from, to: r.to, format: 'csv' })).blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'switchyard-costs-' + r.first + '-to-' + r.last + '.csv';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    } catch (e) {
      if (e instanceof AuthError) { showLogin('The gateway rejected the key: ' + e.message); return; }
      showError('CSV download failed: ' + (e.message || String(e)));
    } finally {
      el.csv.disabled = false;
    }
  }

  // ---- events -----------------------------------------------------------

  el.loginForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = el.keyInput.value.trim();
    if (!v) return;
    key = v;
    try { sessionStorage.setItem(STORAGE_KEY, v); } catch (e) { /* kept in memory only */ }
    el.keyInput.value = '';
    showApp();
  });
  el.logout.addEventListener('click', () => showLogin(''));
  el.controls.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  el.range.addEventListener('change', () => {
    const custom = el.range.value === 'custom';
    el.custom.hidden = !custom;
    if (custom && !el.from.value) {
      const today = day(new Date());
      el.from.value = isoDate(new Date(today.getFullYear(), today.getMonth(), 1));
      el.to.value = isoDate(today);
    }
    load();
  });
  el.from.addEventListener('change', load);
  el.to.addEventListener('change', load);
  el.group.addEventListener('change', load);
  el.csv.addEventListener('click', downloadCSV);
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (chart) chart.setSize({ width: chartWidth(), height: 300 }); }, 100);
  });

  if (key) showApp(); else showLogin('');
})();
