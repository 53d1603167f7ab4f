// Switchyard cost dashboard. Reads GET /v1/switchyard/costs/report (and,
// for the entries export, GET /v1/switchyard/costs) with an admin key
// that the user enters and that is kept in sessionStorage only. All text
// from the API is inserted with textContent, never as HTML. Every date is
// UTC, as the ledger and the budgets count them.
(function () {
  'use strict';

  const STORAGE_KEY = 'switchyard.adminKey';
  const REPORT = '/v1/switchyard/costs/report';
  const ENTRIES = '/v1/switchyard/costs';
  const BURN_CHARTS_MAX = 12;
  const GROUP_NAMES = {
    team: 'Team', model: 'Model', backend: 'Backend', key: 'Key', tenant: 'Tenant', provider: 'Provider', kind: 'Backend kind',
  };
  const METRIC_NAMES = { cost: 'Cost', tokens: 'Tokens', requests: 'Requests' };
  const KIND_NAMES = { local: 'Local (embedded)', selfhosted: 'Self-hosted', proprietary: 'Proprietary' };
  const PALETTE = ['#2f6fde', '#e8833a', '#3aa57a', '#c2459a', '#8a63d2', '#d6b027', '#2aa7c4', '#d2504f', '#6b7c93', '#9bbf3a'];

  const $ = (id) => document.getElementById(id);
  const el = {
    login: $('login'), loginForm: $('login-form'), keyInput: $('key'), loginMessage: $('login-message'),
    app: $('app'), logout: $('logout'), controls: $('controls'), range: $('range'), custom: $('custom'),
    from: $('from'), to: $('to'), interval: $('interval'), group: $('group'), metric: $('metric'),
    csv: $('csv'), csvEntries: $('csv-entries'), rangeLabel: $('range-label'), error: $('error'),
    filters: Array.from(document.querySelectorAll('#filters select')), clearFilters: $('clear-filters'),
    cost: $('card-cost'), savings: $('card-savings'), savingsDetail: $('card-savings-detail'), requests: $('card-requests'),
    tokens: $('card-tokens'), tokensDetail: $('card-tokens-detail'), local: $('card-local'), localDetail: $('card-local-detail'),
    metricName: $('metric-name'), groupName: $('group-name'), intervalName: $('interval-name'), groupCol: $('group-col'),
    chart: $('chart'), empty: $('empty'), table: $('totals'),
    budgets: $('budgets'), budgetsEmpty: $('budgets-empty'), burn: $('burn'),
    topBy: $('top-by'), top: $('top'), topCol: $('top-col'), kinds: $('kinds'),
    savingsSummary: $('savings-summary'), savingsFormula: $('savings-formula'), savingsTable: $('savings'),
  };
  // The page's own text for a gateway without any USD budget.
  const NO_BUDGETS = el.budgetsEmpty.textContent;

  let key = '';
  try { key = sessionStorage.getItem(STORAGE_KEY) || ''; } catch (e) { key = ''; }
  let charts = [];
  let loadSeq = 0;
  let report = null;

  class AuthError extends Error {}

  // ---- formatting -------------------------------------------------------

  const intFmt = new Intl.NumberFormat('en-US');
  const pctFmt = new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 });

  function groupDigits(s) { return s.replace(/\B(?=(\d{3})+(?!\d))/g, ','); }

  // usd shows an amount of the API (an exact decimal string) to the cent,
  // or to two significant digits below a cent; the exact amount is kept
  // in the element's data-exact and title.
  function usd(s) {
    const v = parseFloat(s) || 0;
    const a = Math.abs(v);
    if (a === 0) return '$0';
    const sign = v < 0 ? '-$' : '$';
    if (a < 0.01) return sign + Number(a.toPrecision(2)).toString();
    return sign + a.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function exact(node, amount) {
    node.dataset.exact = amount;
    node.title = usdExact(amount) + ' exactly';
  }

  // usdExact is the exact amount with grouped thousands.
  function usdExact(s) {
    s = String(s || '0');
    const neg = s.startsWith('-');
    if (neg) s = s.slice(1);
    const [whole, frac] = s.split('.');
    return (neg ? '-$' : '$') + groupDigits(whole) + (frac ? '.' + frac : '');
  }

  function usdAbs(s) { return usd(String(s || '0').replace(/^-/, '')); }

  function axisValue(metric, v) {
    if (metric !== 'cost') return intFmt.format(Math.round(v));
    if (v === 0) return '$0';
    const a = Math.abs(v);
    if (a >= 1000) return '$' + intFmt.format(Math.round(v));
    if (a >= 1) return '$' + v.toFixed(2);
    return '$' + Number(v.toPrecision(2)).toString();
  }

  function metricOf(metric, p) {
    if (metric === 'tokens') return p.prompt_tokens + p.completion_tokens;
    if (metric === 'requests') return p.requests;
    return parseFloat(p.cost_usd) || 0;
  }

  function groupLabel(g) { return g === '' ? '(none)' : g; }

  function seriesLabel(s) { return s.other ? 'Other (' + s.groups + ')' : groupLabel(s.group); }

  function pct(v) { return v === null || v === undefined ? '–' : pctFmt.format(v); }

  function pad(n) { return String(n).padStart(2, '0'); }

  function isoDate(d) { return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()); }

  function when(s) {
    const d = new Date(s);
    return isoDate(d) + ' ' + pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ' UTC';
  }

  // ---- time range (UTC days) --------------------------------------------

  function utcDay(y, m, d) { return new Date(Date.UTC(y, m, d)); }

  function parseDate(v) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v || '');
    return m ? utcDay(+m[1], +m[2] - 1, +m[3]) : null;
  }

  // range is the selected [from, to) in UTC days, as RFC 3339 instants.
  function range() {
    const now = new Date();
    const y = now.getUTCFullYear();
    const m = now.getUTCMonth();
    const d = now.getUTCDate();
    let from;
    let to = utcDay(y, m, d + 1);
    switch (el.range.value) {
      case 'today': from = utcDay(y, m, d); break;
      case '7d': from = utcDay(y, m, d - 6); break;
      case '30d': from = utcDay(y, m, d - 29); break;
      case 'lastmonth': from = utcDay(y, m - 1, 1); to = utcDay(y, m, 1); break;
      case 'custom': {
        from = parseDate(el.from.value);
        const last = parseDate(el.to.value);
        if (!from || !last) return { error: 'Choose both a from and a to date.' };
        if (last < from) return { error: 'The to date is before the from date.' };
        to = new Date(last.getTime() + 86400000);
        break;
      }
      default: from = utcDay(y, m, 1);
    }
    const lastDay = new Date(to.getTime() - 86400000);
    return {
      from: from.toISOString(), to: to.toISOString(), first: isoDate(from), last: isoDate(lastDay),
      label: isoDate(from) === isoDate(lastDay) ? isoDate(from) : isoDate(from) + ' – ' + isoDate(lastDay),
    };
  }

  function filters() {
    const f = {};
    for (const s of el.filters) if (s.value) f[s.dataset.dim] = s.value;
    return f;
  }

  function params(r) {
    return Object.assign({ from: r.from, to: r.to, interval: el.interval.value, stack_by: el.group.value }, filters());
  }

  // ---- API --------------------------------------------------------------

  async function api(path, query) {
    const resp = await fetch(path + '?' + new URLSearchParams(query).toString(), {
      headers: { Authorization: 'Bearer ' + key }, cache: 'no-store', credentials: 'omit',
    });
    if (resp.ok) return resp;
    let message = '';
    try { message = (await resp.json()).error.message || ''; } catch (e) { /* not JSON */ }
    if (resp.status === 401) throw new AuthError(message || 'The key was rejected.');
    throw new Error(message || ('The gateway answered HTTP ' + resp.status + '.'));
  }

  // ---- views ------------------------------------------------------------

  function setState(s) { document.body.dataset.state = s; }

  function showError(msg) {
    el.error.textContent = msg;
    el.error.hidden = !msg;
  }

  function destroyCharts() {
    for (const c of charts) c.destroy();
    charts = [];
  }

  function clearData() {
    destroyCharts();
    report = null;
    el.chart.replaceChildren();
    el.burn.replaceChildren();
    for (const t of [el.table, el.budgets, el.top, el.kinds, el.savingsTable]) {
      t.tBodies[0].replaceChildren();
      if (t.tFoot) t.deleteTFoot();
    }
    for (const c of [el.cost, el.savings, el.requests, el.tokens, el.local]) c.textContent = '–';
    for (const c of [el.tokensDetail, el.savingsDetail, el.savingsSummary, el.savingsFormula]) c.textContent = '';
    el.empty.hidden = true;
    el.budgetsEmpty.hidden = true;
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

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function exactCell(row, amount) {
    const td = cell(row, usd(amount), 'num');
    exact(td, amount);
    return td;
  }

  function swatch(td, color) {
    const s = document.createElement('span');
    s.className = 'swatch';
    s.style.backgroundColor = color;
    td.prepend(s);
  }

  function colorOf(i, s) { return s.other ? '#b8c0cc' : PALETTE[i % PALETTE.length]; }

  function renderCards(rep) {
    const t = rep.total;
    el.cost.textContent = usd(t.cost_usd);
    exact(el.cost, t.cost_usd);
    el.savings.textContent = usd(t.savings_usd);
    exact(el.savings, t.savings_usd);
    const sv = parseFloat(t.savings_usd);
    el.savingsDetail.textContent = sv > 0 ? 'saved against the reference models'
      : sv < 0 ? 'cost more than the reference models' : 'against the reference models';
    el.requests.textContent = intFmt.format(t.requests);
    el.tokens.textContent = intFmt.format(t.prompt_tokens + t.completion_tokens);
    el.tokensDetail.textContent = intFmt.format(t.prompt_tokens) + ' prompt (' + intFmt.format(t.cached_tokens) +
      ' cached) · ' + intFmt.format(t.completion_tokens) + ' completion';
    el.local.textContent = pct(rep.local_share.tokens);
    el.localDetail.textContent = 'of tokens, ' + pct(rep.local_share.requests) + ' of requests, on local or self-hosted backends';
  }

  function renderTotals(rep) {
    const body = el.table.tBodies[0];
    body.replaceChildren();
    const totalCost = parseFloat(rep.total.cost_usd) || 0;
    rep.series.forEach((s, i) => {
      const tr = body.insertRow();
      tr.dataset.group = s.other ? '(other)' : s.group;
      const td = cell(tr, seriesLabel(s), s.group === '' && !s.other ? 'none' : '');
      swatch(td, colorOf(i, s));
      cell(tr, intFmt.format(s.total.requests), 'num');
      cell(tr, intFmt.format(s.total.prompt_tokens), 'num');
      cell(tr, intFmt.format(s.total.completion_tokens), 'num');
      exactCell(tr, s.total.cost_usd);
      exactCell(tr, s.total.savings_usd);
      cell(tr, totalCost > 0 ? pctFmt.format(parseFloat(s.total.cost_usd) / totalCost) : '–', 'num');
    });
    if (el.table.tFoot) el.table.deleteTFoot();
    if (rep.series.length > 1) {
      const t = rep.total;
      const tr = el.table.createTFoot().insertRow();
      cell(tr, 'Total');
      cell(tr, intFmt.format(t.requests), 'num');
      cell(tr, intFmt.format(t.prompt_tokens), 'num');
      cell(tr, intFmt.format(t.completion_tokens), 'num');
      exactCell(tr, t.cost_usd);
      exactCell(tr, t.savings_usd);
      cell(tr, '', 'num');
    }
  }

  function width(node, fallback) { return Math.max(260, node.clientWidth || fallback); }

  const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');

  // renderChart stacks the series: each one is drawn as the cumulative sum
  // of itself and those below it, from the top of the stack down, so each
  // band shows its own series.
  function renderChart(rep, metric) {
    el.chart.replaceChildren();
    el.empty.hidden = rep.total.requests > 0;
    if (!rep.series.length || !rep.buckets.length || typeof uPlot === 'undefined') return;
    const xs = rep.buckets.map((b) => Date.parse(b) / 1000);
    const step = xs.length > 1 ? xs[1] - xs[0] : (rep.interval === 'hour' ? 3600 : 86400);
    const raw = rep.series.map((s) => s.points.map((p) => metricOf(metric, p)));
    const cum = [];
    let acc = xs.map(() => 0);
    for (const r of raw) {
      acc = acc.map((v, j) => v + r[j]);
      cum.push(acc);
    }
    const order = cum.map((_, i) => i).reverse();
    const bars = uPlot.paths.bars({ size: [0.8, 60], align: 1 });
    const c = new uPlot({
      width: width(el.chart, 900),
      height: 300,
      tzDate: utc,
      legend: { show: false },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => [xs[0], xs[xs.length - 1] + step] },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        {},
        { values: (u, splits) => splits.map((v) => axisValue(metric, v)), size: 80 },
      ],
      series: [{}].concat(order.map((i) => ({
        label: seriesLabel(rep.series[i]), stroke: colorOf(i, rep.series[i]), fill: colorOf(i, rep.series[i]),
        width: 0, points: { show: false }, paths: bars,
      }))),
    }, [xs].concat(order.map((i) => cum[i])), el.chart);
    charts.push(c);
  }

  function runsOut(b) {
    if (!b.exhausted_at) return 'Not at this rate';
    const at = Date.parse(b.exhausted_at);
    if (parseFloat(b.over_usd) > 0 || b.remaining_usd === '0') return 'Ran out ' + when(b.exhausted_at);
    return (at > Date.parse(b.end) ? 'Not this period' : when(b.exhausted_at) + ' at this rate');
  }

  function renderBudgets(rep) {
    const body = el.budgets.tBodies[0];
    body.replaceChildren();
    el.burn.replaceChildren();
    // No row: no budget is configured at all; or a team, tenant or key
    // filter leaves none of those that are; or, without one, the
    // budgets are per team, tenant or key (no id) and nobody spent yet
    // this period.
    el.budgetsEmpty.hidden = rep.budgets.length > 0;
    const n = rep.budgets_configured || 0;
    const these = n === 1 ? 'One USD budget is configured' : intFmt.format(n) + ' USD budgets are configured';
    const scoped = ['team', 'tenant', 'key'].some((d) => rep.filter && rep.filter[d]);
    let state = 'none';
    if (rep.budgets.length > 0) state = 'shown';
    else if (n > 0) state = scoped ? 'filtered' : 'unspent';
    el.budgetsEmpty.dataset.state = state;
    if (state === 'filtered') {
      el.budgetsEmpty.textContent = 'No budget applies to this selection. ' + these +
        ': clear the team, tenant or key filter to see ' + (n === 1 ? 'it.' : 'them.');
    } else if (state === 'unspent') {
      el.budgetsEmpty.textContent = 'No budget has spend this period. ' + these +
        ', for each team, tenant or key: one shows here once it spends.';
    } else {
      el.budgetsEmpty.textContent = NO_BUDGETS;
    }
    rep.budgets.forEach((b, i) => {
      const tr = body.insertRow();
      tr.dataset.budget = b.scope + ':' + b.id + ':' + b.period;
      if (b.exhausted_at) tr.className = parseFloat(b.over_usd) > 0 || b.remaining_usd === '0' ? 'bad' : 'warn';
      cell(tr, b.scope + ' ' + b.id);
      cell(tr, b.period === 'day' ? 'today' : 'this month');
      exactCell(tr, b.limit_usd);
      exactCell(tr, b.spent_usd);
      exactCell(tr, b.remaining_usd);
      exactCell(tr, b.rate_usd_per_day);
      exactCell(tr, b.forecast_usd);
      cell(tr, runsOut(b));
      if (i < BURN_CHARTS_MAX) renderBurn(b);
    });
    if (rep.budgets.length > BURN_CHARTS_MAX) {
      const p = document.createElement('p');
      p.className = 'muted small';
      p.textContent = 'Burn-down charts for the ' + BURN_CHARTS_MAX + ' most consumed budgets; the table has them all.';
      el.burn.appendChild(p);
    }
  }

  // renderBurn draws one budget's burn-down: what is left so far (solid),
  // the forecast to the end of the period (dashed) and zero.
  function renderBurn(b) {
    if (typeof uPlot === 'undefined') return;
    const box = document.createElement('figure');
    box.className = 'burn';
    const cap = document.createElement('figcaption');
    cap.textContent = b.scope + ' ' + b.id + ' · ' + (b.period === 'day' ? 'today' : 'this month') + ' · ' +
      usd(b.spent_usd) + ' of ' + usd(b.limit_usd);
    box.appendChild(cap);
    el.burn.appendChild(box);
    const limit = parseFloat(b.limit_usd) || 0;
    const xs = b.burn.map((p) => Date.parse(p.t) / 1000);
    const left = b.burn.map((p) => parseFloat(p.remaining_usd) || 0);
    const end = Date.parse(b.end) / 1000;
    const forecast = left.map(() => null);
    forecast[forecast.length - 1] = left[left.length - 1];
    xs.push(end);
    left.push(null);
    forecast.push(limit - (parseFloat(b.forecast_usd) || 0));
    const zero = xs.map(() => 0);
    const c = new uPlot({
      width: width(box, 280),
      height: 150,
      tzDate: utc,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: true, range: () => [xs[0], end] } },
      axes: [{ size: 30, font: '10px system-ui' }, { size: 60, font: '10px system-ui', values: (u, s) => s.map((v) => axisValue('cost', v)) }],
      series: [
        {},
        { label: 'Left', stroke: '#2f6fde', width: 2, points: { show: false } },
        { label: 'Forecast', stroke: '#e8833a', width: 2, dash: [6, 4], points: { show: false }, spanGaps: true },
        { label: 'Zero', stroke: '#b42318', width: 1, points: { show: false } },
      ],
    }, [xs, left, forecast, zero], box);
    charts.push(c);
  }

  function renderTop(rep) {
    const by = el.topBy.value;
    el.topCol.textContent = GROUP_NAMES[by];
    const body = el.top.tBodies[0];
    body.replaceChildren();
    const totalCost = parseFloat(rep.total.cost_usd) || 0;
    (rep.top[by] || []).forEach((t, i) => {
      const tr = body.insertRow();
      tr.dataset.group = t.group;
      cell(tr, String(i + 1), 'muted');
      cell(tr, groupLabel(t.group), t.group === '' ? 'none' : '');
      cell(tr, intFmt.format(t.requests), 'num');
      exactCell(tr, t.cost_usd);
      cell(tr, totalCost > 0 ? pctFmt.format(parseFloat(t.cost_usd) / totalCost) : '–', 'num');
    });
  }

  function renderKinds(rep) {
    const body = el.kinds.tBodies[0];
    body.replaceChildren();
    const kinds = rep.local_share.by_kind;
    let all = 0;
    for (const k of kinds) all += k.prompt_tokens + k.completion_tokens;
    for (const k of kinds) {
      const tr = body.insertRow();
      tr.dataset.group = k.group;
      const tokens = k.prompt_tokens + k.completion_tokens;
      cell(tr, KIND_NAMES[k.group] || groupLabel(k.group));
      cell(tr, intFmt.format(k.requests), 'num');
      cell(tr, intFmt.format(tokens), 'num');
      cell(tr, all > 0 ? pctFmt.format(tokens / all) : '–', 'num');
      exactCell(tr, k.cost_usd);
    }
  }

  function meaning(s) {
    const v = parseFloat(s) || 0;
    if (v > 0) return 'saved ' + usd(s);
    if (v < 0) return 'cost ' + usdAbs(s) + ' more';
    return 'no difference';
  }

  function renderSavings(rep) {
    const sv = rep.savings;
    const v = parseFloat(sv.savings_usd) || 0;
    el.savingsSummary.textContent = v > 0
      ? 'Routing saved ' + usd(sv.savings_usd) + ': these requests cost ' + usd(sv.cost_usd) + ', and ' + usd(sv.reference_cost_usd) + ' on the teams\' reference models.'
      : v < 0
        ? 'These requests cost ' + usdAbs(sv.savings_usd) + ' more than the teams\' reference models would have: ' + usd(sv.cost_usd) + ' instead of ' + usd(sv.reference_cost_usd) + '.'
        : 'No savings: these requests cost what the teams\' reference models would have (' + usd(sv.cost_usd) + ').';
    el.savingsSummary.dataset.sign = v > 0 ? 'saved' : v < 0 ? 'cost-more' : 'none';
    el.savingsFormula.textContent = sv.formula;
    const body = el.savingsTable.tBodies[0];
    body.replaceChildren();
    for (const t of sv.teams) {
      const tr = body.insertRow();
      tr.dataset.group = t.team;
      const s = parseFloat(t.savings_usd) || 0;
      if (s < 0) tr.className = 'bad';
      cell(tr, groupLabel(t.team), t.team === '' ? 'none' : '');
      cell(tr, t.reference_model || '(none)');
      cell(tr, intFmt.format(t.requests), 'num');
      exactCell(tr, t.cost_usd);
      exactCell(tr, t.reference_cost_usd);
      exactCell(tr, t.savings_usd);
      cell(tr, meaning(t.savings_usd));
    }
  }

  function renderFilters(rep) {
    for (const s of el.filters) {
      const dim = s.dataset.dim;
      const keep = s.value;
      const values = (rep.dimensions[dim] || []).slice();
      if (keep && !values.includes(keep)) values.push(keep);
      const opts = [new Option('All', '')].concat(values.map((v) => new Option(groupLabel(v), v)));
      s.replaceChildren(...opts);
      s.value = keep;
      // "" is both "All" and "no team": filtering on an empty value is not offered.
      for (const o of s.options) if (o.value === '' && o.text !== 'All') o.disabled = true;
    }
  }

  function render() {
    const rep = report;
    if (!rep) return;
    destroyCharts();
    const metric = el.metric.value;
    el.metricName.textContent = METRIC_NAMES[metric];
    el.groupName.textContent = GROUP_NAMES[rep.stack_by].toLowerCase();
    el.groupCol.textContent = GROUP_NAMES[rep.stack_by];
    el.intervalName.textContent = '(per ' + rep.interval + ', UTC)';
    renderCards(rep);
    renderTotals(rep);
    renderChart(rep, metric);
    renderBudgets(rep);
    renderTop(rep);
    renderKinds(rep);
    renderSavings(rep);
    renderFilters(rep);
  }

  async function load() {
    const seq = ++loadSeq;
    const r = range();
    if (r.error) { showError(r.error); return; }
    const f = filters();
    const fl = Object.keys(f).map((k) => k + ' ' + f[k]).join(', ');
    el.rangeLabel.textContent = r.label + ' (UTC)' + (fl ? ' · ' + fl : '');
    setState('loading');
    try {
      const rep = await (await api(REPORT, params(r))).json();
      if (seq !== loadSeq) return;
      report = rep;
      showError('');
      render();
      document.body.dataset.rendered = rep.stack_by;
      document.body.dataset.seq = String(seq);
      setState('ready');
    } catch (e) {
      if (seq !== loadSeq) return;
      if (e instanceof AuthError) { showLogin('The gateway rejected the key: ' + e.message); return; }
      clearData();
      showError(e.message || String(e));
      setState('error');
    }
  }

  async function download(button, path, query, name) {
    button.disabled = true;
    try {
      const blob = await (await api(path, query)).blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    } catch (e) {
      if (e instanceof AuthError) { showLogin('The gateway rejected the key: ' + e.message); return; }
      showError('CSV download failed: ' + (e.message || String(e)));
    } finally {
      button.disabled = false;
    }
  }

  function downloadView() {
    const r = range();
    if (r.error) { showError(r.error); return; }
    download(el.csv, REPORT, Object.assign(params(r), { format: 'csv' }),
      'switchyard-cost-report-' + el.group.value + '-' + r.first + '-to-' + r.last + '.csv');
  }

  function downloadEntries() {
    const r = range();
    if (r.error) { showError(r.error); return; }
    download(el.csvEntries, ENTRIES, { from: r.from, to: r.to, format: 'csv' }, 'switchyard-costs-' + r.first + '-to-' + r.last + '.csv');
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
      const now = new Date();
      el.from.value = isoDate(utcDay(now.getUTCFullYear(), now.getUTCMonth(), 1));
      el.to.value = isoDate(now);
    }
    load();
  });
  for (const c of [el.from, el.to, el.interval, el.group].concat(el.filters)) c.addEventListener('change', load);
  el.clearFilters.addEventListener('click', () => {
    for (const s of el.filters) s.value = '';
    load();
  });
  el.metric.addEventListener('change', render);
  el.topBy.addEventListener('change', () => { if (report) renderTop(report); });
  el.csv.addEventListener('click', downloadView);
  el.csvEntries.addEventListener('click', downloadEntries);
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 150);
  });

  if (key) showApp(); else showLogin('');
})();
