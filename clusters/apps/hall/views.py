"""The hall's pages as HTML: one function per page, all through the escaping renderer.

Every value from the database, a form or a URL goes through :func:`markup.h` (escaped); only
markup built here is inserted as is. No inline script or style: the Content-Security-Policy
allows scripts and styles from ``/static`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .assets import ASSETS
from .codes import ACTIONS, FINAL_STATES, STATE_LABELS, STATES
from .markup import Markup, esc, escaped, fmt_time, h, join

LEVEL_LABELS = {
    "province": "省级",
    "city": "市（州）级",
    "county": "县（市、区）级",
    "township": "乡镇（街道）级",
    "village": "村（社区）级",
}
KIND_LABELS = {"administrative": "行政许可", "public_service": "公共服务"}
ACCOUNT_LABELS = {"citizen": "个人", "enterprise": "法人"}
ACTION_LABELS = {
    "apply": "提交申请",
    "accept": "受理",
    "request-material": "要求补正材料",
    "supplement": "补正材料",
    "approve": "审批办结",
    "return": "退回",
}
SCORE_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
DONE_LABELS = {
    "applied": "申请已提交。请记下办件编码，凭编码随时查询办理进度。",
    "rated": "感谢您的评价！",
    "supplemented": "补正材料已提交，请等待办理。",
    "registered": "注册成功，您已登录。",
    "login": "登录成功。",
    "logout": "您已安全退出。",
    "accept": "已受理。",
    "request-material": "已通知申请人补正材料。",
    "approve": "已办结。",
    "return": "已退回。",
    "mode": "已切换显示模式。",
}
SITE_TITLE = "网上办事大厅"


@dataclass
class View:
    """What every page needs to know about the request."""

    path: str  # the page's own path and query (the mode switch comes back here)
    csrf: str
    elder: bool = False
    who: str = ""  # "", "citizen", "enterprise", "staff"
    name: str = ""
    flash: str = ""
    crumbs: list[tuple[str, str]] = field(default_factory=list)  # (href, label)


def csrf_field(v: View) -> Markup:
    return Markup(f'<input type="hidden" name="csrf" value="{escaped(v.csrf)}">')


def _frame() -> tuple[str, ...]:
    """The parts of every page's frame between the parts that vary, escaped once."""
    site, css, js, icon = (
        escaped(x) for x in (SITE_TITLE, ASSETS["hall.css"].url, ASSETS["hall.js"].url,
                              ASSETS["icon.svg"].url)
    )  # fmt: skip
    return (
        '<!doctype html>\n<html lang="zh-CN"',  # class
        '><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>',  # title
        f' - {site}</title><link rel="stylesheet" href="{css}">'
        f'<link rel="icon" href="{icon}" type="image/svg+xml">'
        f'<script src="{js}" defer></script></head>\n<body>'
        '<a class="skip" href="#main">跳到主要内容</a><header class="top"><div class="wrap">'
        f'<p class="brand"><a href="/">{site}</a></p><nav class="main" aria-label="主导航">'
        '<ul><li><a href="/">首页</a></li>',  # links
        "</ul></nav>",  # mode
        '</div></header>\n<main id="main" tabindex="-1"><div class="wrap">',  # crumbs, flash
        "<h1>",  # h1
        "</h1>\n",  # body
        f'</div></main>\n<footer><div class="wrap"><p>{site}：一网通办，一件一码。'
        "咨询投诉请拨打政务服务便民热线 12345。</p>",  # who
        "</div></footer></body></html>\n",
    )


_FRAME = _frame()
_LINKS = {
    "staff": '<li><a href="/staff">工作台</a></li><li><a href="/staff/queue">办件队列</a></li>'
    '<li><a href="/staff/overdue">超期监察</a></li>',
    "account": '<li><a href="/my/cases">我的办件</a></li><li><a href="/progress">办件查询</a></li>',
    "": '<li><a href="/progress">办件查询</a></li><li><a href="/login">登录</a></li>'
    '<li><a href="/register">注册</a></li>',
}


def layout(v: View, title: str, body: Markup, status_title: str | None = None) -> Markup:
    """A whole page: the frame (every page's, its constant parts escaped once) around
    ``body``; every value from the request is escaped here."""
    f = _FRAME
    csrf = csrf_field(v)
    if v.who:
        links = (
            f"{_LINKS['staff' if v.who == 'staff' else 'account']}"
            f'<li><form method="post" action="/logout">{csrf}'
            '<button type="submit" class="link">退出登录</button></form></li>'
        )
    else:
        links = _LINKS[""]
    mode = (
        f'<form method="post" action="/mode" class="mode">{csrf}'
        f'<input type="hidden" name="elder" value="{"0" if v.elder else "1"}">'
        f'<input type="hidden" name="back" value="{escaped(v.path)}">'
        f'<button type="submit" aria-pressed="{"true" if v.elder else "false"}">'
        f"长辈模式{'：开' if v.elder else '：关'}</button></form>"
    )
    crumbs = ""
    if v.crumbs:
        items = "".join(
            f'<li><a href="{escaped(href)}">{escaped(label)}</a></li>' for href, label in v.crumbs
        )
        crumbs = (
            f'<nav class="crumbs" aria-label="当前位置"><ol>{items}'
            f'<li aria-current="page">{escaped(title)}</li></ol></nav>'
        )
    flash = f'<div class="flash" role="status">{escaped(v.flash)}</div>' if v.flash else ""
    who = f"<p>当前登录：{escaped(v.name)}</p>" if v.name else ""
    parts = (
        f[0], ' class="elder"' if v.elder else "", f[1],
        escaped(status_title or title), f[2], links, f[3], mode, f[4], crumbs, flash,
        f[5], escaped(title), f[6], escaped(body), f[7], who, f[8],
    )  # fmt: skip
    return Markup("".join(parts))


def error_page(v: View, status: int, message: str) -> Markup:
    titles = {
        400: "请求有误",
        401: "请先登录",
        403: "无权访问",
        404: "未找到",
        409: "无法办理",
        413: "内容过大",
        503: "服务暂不可用",
    }
    title = titles.get(status, "出错了")
    body = h(
        '<div class="error-box" role="alert"><p>{}</p></div><p><a href="/">返回首页</a></p>',
        message,
    )
    return layout(v, title, body)


def _field_error(errors: dict[str, str], name: str) -> Markup:
    if name not in errors:
        return Markup("")
    return h('<p class="error-box" id="{}-error">{}</p>', name, errors[name])


def _invalid(errors: dict[str, str], name: str) -> Markup:
    if name not in errors:
        return Markup("")
    return h(' aria-invalid="true" aria-describedby="{}-error"', name)


def _error_summary(errors: dict[str, str]) -> Markup:
    if not errors:
        return Markup("")
    items = join(h("<li>{}</li>", msg) for msg in errors.values())
    return h(
        '<div class="error-box" role="alert"><p>请修改以下内容后再提交：</p><ul>{}</ul></div>',
        items,
    )


# -- citizens' pages ----------------------------------------------------------------------------


def home(v: View, levels: list[dict[str, Any]], top: list[dict[str, Any]], counties: int) -> Markup:
    cards = join(
        h(
            '<li><a href="/levels/{lv}">{label}</a><span class="n">{n} 个服务站点</span></li>',
            lv=r["level"],
            label=LEVEL_LABELS[r["level"]],
            n=r["n"],
        )
        for r in levels
    )
    sites = join(
        h(
            '<li><a href="/sites/{}">{}</a>（{}）</li>',
            s["code"],
            s["name"],
            LEVEL_LABELS[s["level"]],
        )
        for s in top
    )
    return layout(
        v,
        SITE_TITLE,
        h(
            '<p class="hint">省、市、县、乡、村五级政务服务，一网通办。'
            "选择办事层级和站点，查看办事指南并在线申办。</p>"
            '<section aria-labelledby="levels-h"><h2 id="levels-h">按层级找站点</h2>'
            '<ul class="cards">{cards}</ul></section>'
            '<section aria-labelledby="sites-h"><h2 id="sites-h">省、市级政务服务中心</h2>'
            '<ul class="links">{sites}</ul>'
            '<p>另有 {counties} 个县级政务服务中心，<a href="/levels/county">按县查看</a>。</p>'
            "</section>"
            '<section aria-labelledby="q-h"><h2 id="q-h">办件查询</h2>{lookup}</section>',
            cards=cards,
            sites=sites,
            counties=counties,
            lookup=lookup_form(v, ""),
        ),
    )


def lookup_form(v: View, code: str, error: str = "") -> Markup:
    errors = {"code": error} if error else {}
    return h(
        '<form method="get" action="/progress" class="search">'
        '<div><label for="code">办件编码（31 位数字）</label>'
        '<input type="text" id="code" name="code" value="{code}" inputmode="numeric"'
        ' autocomplete="off" maxlength="40"{invalid}></div>'
        '<button type="submit">查询进度</button></form>{err}',
        code=code,
        invalid=_invalid(errors, "code"),
        err=_field_error(errors, "code"),
    )


def level_page(
    v: View, level: str, sites: list[dict[str, Any]], page: int, more: bool, parent: str
) -> Markup:
    rows = join(
        h(
            '<tr><td><a href="/sites/{code}">{name}</a></td><td>{kind}</td><td>{up}</td></tr>',
            code=s["code"],
            name=s["name"],
            kind=s["kind"],
            up=s["parent_name"] or "",
        )
        for s in sites
    )
    body = h(
        '<table><caption class="hint">第 {page} 页</caption><thead><tr><th scope="col">站点</th>'
        '<th scope="col">类型</th><th scope="col">上级</th></tr></thead><tbody>{rows}</tbody>'
        "</table>{pager}",
        page=page,
        rows=rows,
        pager=pager(f"/levels/{level}", {"parent": parent}, page, more),
    )
    if not sites:
        body = h("<p>这一层级暂无服务站点。</p>")
    return layout(v, f"{LEVEL_LABELS[level]}服务站点", body)


def pager(base: str, query: dict[str, str], page: int, more: bool) -> Markup:
    from urllib.parse import urlencode

    def href(n: int) -> str:
        q = {k: val for k, val in query.items() if val}
        q["page"] = str(n)
        return f"{base}?{urlencode(q)}"

    parts = []
    if page > 1:
        parts.append(h('<a href="{}" rel="prev">上一页</a>', href(page - 1)))
    if more:
        parts.append(h('<a href="{}" rel="next">下一页</a>', href(page + 1)))
    if not parts:
        return Markup("")
    return h('<nav class="pager" aria-label="翻页">{}</nav>', join(parts))


def site_page(
    v: View,
    site: dict[str, Any],
    children: list[dict[str, Any]],
    depts: list[dict[str, Any]],
    items: list[dict[str, Any]],
    query: dict[str, str],
    page: int,
    more: bool,
) -> Markup:
    return layout(v, site["name"], site_body(site, children, depts, items, query, page, more))


def site_body(
    site: dict[str, Any],
    children: list[dict[str, Any]],
    depts: list[dict[str, Any]],
    items: list[dict[str, Any]],
    query: dict[str, str],
    page: int,
    more: bool,
) -> Markup:
    """A site page's content: the same for every caller (the hall may keep it rendered)."""
    options = join(
        h(
            '<option value="{}"{}>{}</option>',
            d["code"],
            Markup(" selected") if d["code"] == query.get("dept") else Markup(""),
            d["name"],
        )
        for d in depts
    )
    kinds = join(
        h(
            '<option value="{}"{}>{}</option>',
            k,
            Markup(" selected") if k == query.get("kind") else Markup(""),
            label,
        )
        for k, label in KIND_LABELS.items()
    )
    search = h(
        '<form method="get" action="/sites/{code}" class="search" role="search">'
        '<div><label for="q">事项名称</label><input type="search" id="q" name="q" value="{q}"'
        ' maxlength="50"></div>'
        '<div><label for="dept">部门</label><select id="dept" name="dept">'
        '<option value="">全部部门</option>{options}</select></div>'
        '<div><label for="kind">类型</label><select id="kind" name="kind">'
        '<option value="">全部类型</option>{kinds}</select></div>'
        '<button type="submit">搜索</button></form>',
        code=site["code"],
        q=query.get("q", ""),
        options=options,
        kinds=kinds,
    )
    rows = join(
        h(
            '<tr><td><a href="/items/{code}">{name}</a></td><td>{dept}</td><td>{kind}</td>'
            "<td>{days} 个工作日</td><td>{online}</td></tr>",
            code=i["code"],
            name=i["name"],
            dept=i["dept_name"],
            kind=KIND_LABELS.get(i["kind"], i["kind"]),
            days=i["time_limit_days"],
            online="可网上办理" if i["online"] else "须到窗口办理",
        )
        for i in items
    )
    if items:
        found = h(
            '<table><caption class="hint">第 {page} 页</caption><thead><tr>'
            '<th scope="col">事项</th><th scope="col">部门</th><th scope="col">类型</th>'
            '<th scope="col">承诺时限</th><th scope="col">办理方式</th></tr></thead>'
            "<tbody>{rows}</tbody></table>{pager}",
            page=page,
            rows=rows,
            pager=pager(f"/sites/{site['code']}", query, page, more),
        )
    else:
        found = h("<p>没有找到符合条件的事项，请换个关键词试试。</p>")
    below = Markup("")
    if children:
        below = h(
            '<section aria-labelledby="below-h"><h2 id="below-h">下级服务站点</h2>'
            '<ul class="links">{}</ul></section>',
            join(h('<li><a href="/sites/{}">{}</a></li>', c["code"], c["name"]) for c in children),
        )
    return h(
        "<p>{level} · {kind} · 办公时间 {hours} · {windows} 个窗口 · 共 {n} 项事项</p>"
        '<section aria-labelledby="cat-h"><h2 id="cat-h">办事事项</h2>{search}'
        '<div aria-live="polite">{found}</div></section>{below}',
        level=LEVEL_LABELS[site["level"]],
        kind=site["kind"],
        hours=site["hours"],
        windows=site["windows"],
        n=site["items"],
        search=search,
        found=found,
        below=below,
    )


def guide_page(v: View, g: dict[str, Any]) -> Markup:
    return layout(v, g["name"], guide_body(g))


def guide_body(g: dict[str, Any]) -> Markup:
    """A guide page's content: the same for every caller (the hall may keep it rendered)."""
    materials = join(
        h(
            "<tr><td>{name}</td><td>{form}</td><td>{copies}</td><td>{req}</td><td>{note}</td></tr>",
            name=m.get("name"),
            form=m.get("form"),
            copies=m.get("copies"),
            req="必需" if m.get("required") else "视情况提供",
            note=m.get("note") or "",
        )
        for m in g["materials"]
    )
    steps = join(
        h(
            "<li>{step}（{who}，{days}）</li>",
            step=s.get("step"),
            who=s.get("who"),
            days=f"{s.get('limit_days')} 个工作日" if s.get("limit_days") else "即时办理",
        )
        for s in g["steps"]
    )
    if g["online"]:
        action = h('<p><a class="button" href="/items/{}/apply">在线申办</a></p>', g["code"])
    else:
        action = h("<p>本事项须到窗口办理：请携带材料到 {} 办理。</p>", g["site_name"])
    return h(
        "{action}"
        '<dl class="guide"><dt>实施机关</dt><dd>{site}{dept}</dd>'
        "<dt>事项类型</dt><dd>{kind}</dd>"
        '<dt>事项编码</dt><dd class="code">{code}</dd>'
        "<dt>法定时限</dt><dd>{legal} 个工作日</dd>"
        "<dt>承诺时限</dt><dd>{promised} 个工作日</dd>"
        "<dt>收费标准</dt><dd>{fee}</dd></dl>"
        '<h2 id="basis">设定依据</h2><p>{basis}</p>'
        '<h2 id="conditions">受理条件</h2><p>{conditions}</p>'
        '<h2 id="materials">申请材料</h2><table><thead><tr><th scope="col">材料名称</th>'
        '<th scope="col">形式</th><th scope="col">份数</th><th scope="col">要求</th>'
        '<th scope="col">备注</th></tr></thead><tbody>{materials}</tbody></table>'
        '<h2 id="steps">办理流程</h2><ol>{steps}</ol>',
        action=action,
        site=g["site_name"],
        dept=g["dept_name"],
        kind=KIND_LABELS.get(g["kind"], g["kind"]),
        code=g["code"],
        legal=g["legal_limit_days"],
        promised=g["time_limit_days"],
        fee=g["fee"],
        basis=g["basis"],
        conditions=g["conditions"],
        materials=materials,
        steps=steps,
    )


def apply_page(
    v: View, g: dict[str, Any], values: dict[str, Any], errors: dict[str, str]
) -> Markup:
    ticked = set(values.get("material", []))
    boxes = join(
        h(
            '<label><input type="checkbox" name="material" value="{i}"{checked}> '
            "{name}（{form}，{copies} 份）{req}</label>",
            i=i,
            checked=Markup(" checked") if str(i) in ticked else Markup(""),
            name=m.get("name"),
            form=m.get("form"),
            copies=m.get("copies"),
            req=h("<strong>（必需）</strong>") if m.get("required") else "",
        )
        for i, m in enumerate(g["materials"])
    )
    return layout(
        v,
        f"在线申办：{g['name']}",
        h(
            "{summary}<p>办理站点：{site}。承诺 {days} 个工作日内办结。</p>"
            '<form method="post" action="/items/{code}/apply" class="stack">{csrf}'
            "<fieldset{minvalid}><legend>申请材料（请逐项确认已准备好）</legend>{boxes}"
            "{merr}</fieldset>"
            '<label for="phone">联系电话</label>'
            '<input type="tel" id="phone" name="phone" value="{phone}" autocomplete="tel"'
            ' required maxlength="20"{pinvalid}>{perr}'
            '<label for="note">申请说明（选填）</label>'
            '<textarea id="note" name="note" rows="4" maxlength="500">{note}</textarea>'
            '<p><button type="submit">提交申请</button></p></form>',
            summary=_error_summary(errors),
            site=g["site_name"],
            days=g["time_limit_days"],
            code=g["code"],
            csrf=csrf_field(v),
            minvalid=h(' aria-describedby="material-error"') if "material" in errors else "",
            boxes=boxes,
            merr=_field_error(errors, "material"),
            phone=values.get("phone", ""),
            pinvalid=_invalid(errors, "phone"),
            perr=_field_error(errors, "phone"),
            note=values.get("note", ""),
        ),
    )


def register_page(v: View, values: dict[str, str], errors: dict[str, str], nxt: str) -> Markup:
    kind = values.get("kind", "citizen")
    kinds = join(
        h(
            '<label><input type="radio" name="kind" value="{}"{}> {}</label>',
            k,
            Markup(" checked") if k == kind else Markup(""),
            label,
        )
        for k, label in (("citizen", "个人（自然人）"), ("enterprise", "法人（企业、社会组织）"))
    )
    return layout(
        v,
        "注册账号",
        h(
            '{summary}<form method="post" action="/register" class="stack">{csrf}'
            '<input type="hidden" name="next" value="{nxt}">'
            "<fieldset><legend>账号类型</legend>{kinds}</fieldset>"
            '<label for="login">登录名</label><input type="text" id="login" name="login"'
            ' value="{login}" autocomplete="username" required maxlength="64"{linv}>{lerr}'
            '<label for="name">姓名或单位名称</label><input type="text" id="name" name="name"'
            ' value="{name}" autocomplete="name" required maxlength="100"{ninv}>{nerr}'
            '<label for="password">密码（至少 8 个字符）</label><input type="password"'
            ' id="password" name="password" autocomplete="new-password" required{pinv}>{perr}'
            '<label for="password2">再次输入密码</label><input type="password" id="password2"'
            ' name="password2" autocomplete="new-password" required{p2inv}>{p2err}'
            '<p><button type="submit">注册并登录</button></p></form>'
            '<p>已有账号？<a href="/login">登录</a></p>',
            summary=_error_summary(errors),
            csrf=csrf_field(v),
            nxt=nxt,
            kinds=kinds,
            login=values.get("login", ""),
            linv=_invalid(errors, "login"),
            lerr=_field_error(errors, "login"),
            name=values.get("name", ""),
            ninv=_invalid(errors, "name"),
            nerr=_field_error(errors, "name"),
            pinv=_invalid(errors, "password"),
            perr=_field_error(errors, "password"),
            p2inv=_invalid(errors, "password2"),
            p2err=_field_error(errors, "password2"),
        ),
    )


def login_page(v: View, login: str, error: str, nxt: str, staff: bool = False) -> Markup:
    summary = h('<div class="error-box" role="alert"><p>{}</p></div>', error) if error else ""
    if staff:
        body = h(
            "{summary}<p>请使用统一身份认证系统签发的工作令牌登录。</p>"
            '<form method="post" action="/staff/login" class="stack">{csrf}'
            '<input type="hidden" name="next" value="{nxt}">'
            '<label for="token">工作令牌</label><input type="password" id="token" name="token"'
            ' autocomplete="off" required>'
            '<p><button type="submit">登录工作台</button></p></form>',
            summary=summary,
            csrf=csrf_field(v),
            nxt=nxt,
        )
        return layout(v, "工作人员登录", body)
    body = h(
        '{summary}<form method="post" action="/login" class="stack">{csrf}'
        '<input type="hidden" name="next" value="{nxt}">'
        '<label for="login">登录名</label><input type="text" id="login" name="login"'
        ' value="{login}" autocomplete="username" required maxlength="64">'
        '<label for="password">密码</label><input type="password" id="password"'
        ' name="password" autocomplete="current-password" required>'
        '<p><button type="submit">登录</button></p></form>'
        '<p>还没有账号？<a href="/register">注册</a>。工作人员请从'
        '<a href="/staff/login">工作人员入口</a>登录。</p>',
        summary=summary,
        csrf=csrf_field(v),
        nxt=nxt,
        login=login,
    )
    return layout(v, "登录", body)


def _my_case_row(c: dict[str, Any]) -> str:
    code, state = escaped(c["code"]), escaped(c["state"])
    return (
        f'<tr><td><a class="code" href="/cases/{code}">{code}</a></td>'
        f"<td>{escaped(c['item_name'])}</td><td>{escaped(c['site_name'])}</td>"
        f'<td class="state state-{state}">{escaped(STATE_LABELS[c["state"]])}</td>'
        f"<td>{escaped(c['created_at'])}</td></tr>"
    )


def my_cases_page(v: View, cases: list[dict[str, Any]]) -> Markup:
    if not cases:
        return layout(v, "我的办件", h('<p>您还没有办件。<a href="/">去找事项办理</a></p>'))
    rows = Markup("".join(map(_my_case_row, cases)))  # up to a hundred: no h() call each
    return layout(
        v,
        "我的办件",
        h(
            '<table><thead><tr><th scope="col">办件编码</th><th scope="col">事项</th>'
            '<th scope="col">办理站点</th><th scope="col">状态</th><th scope="col">申请时间</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        ),
    )


def lookup_page(v: View, code: str, error: str) -> Markup:
    return layout(
        v,
        "办件查询",
        h(
            "<p>输入办件编码（一件一码），查看办理进度。查看详情需登录申请人账号。</p>{}",
            lookup_form(v, code, error),
        ),
    )


def _actor(actor: str) -> str:
    kind, _, who = actor.partition(":")
    if kind == "staff":
        return f"工作人员 {who}"
    return "申请人"


def _case_facts(case: dict[str, Any]) -> Markup:
    events = join(
        h(
            "<li><time>{at}</time> {who}：{what}（{to}）{comment}</li>",
            at=e["at"],
            who=_actor(e["actor"]),
            what=ACTION_LABELS.get(e["action"], e["action"]),
            to=STATE_LABELS.get(e["to_state"], e["to_state"]),
            comment=h("，意见：{}", e["comment"]) if e["comment"] else "",
        )
        for e in case.get("events", [])
    )
    form = case.get("form") or {}
    materials = form.get("materials") if isinstance(form, dict) else None
    given = Markup("")
    if isinstance(materials, list):
        given = h("<dt>已备材料</dt><dd>{}</dd>", "、".join(str(m) for m in materials) or "（无）")
    if isinstance(form, dict) and form.get("phone"):
        given = h("{}<dt>联系电话</dt><dd>{}</dd>", given, form["phone"])
    if isinstance(form, dict) and form.get("note"):
        given = h("{}<dt>申请说明</dt><dd>{}</dd>", given, form["note"])
    return h(
        '<p>办件编码：<span class="code big-code" id="case-code">{code}</span></p>'
        '<dl class="guide"><dt>事项</dt><dd><a href="/items/{item}">{item_name}</a></dd>'
        "<dt>办理站点</dt><dd>{site}</dd>"
        '<dt>当前状态</dt><dd class="state state-{state}" id="case-state">{label}</dd>'
        "<dt>申请时间</dt><dd>{created}</dd><dt>受理时间</dt><dd>{accepted}</dd>"
        "<dt>承诺办结时间</dt><dd>{deadline}</dd><dt>办结时间</dt><dd>{finished}</dd>{given}"
        "</dl>"
        '<h2 id="timeline-h">办理过程</h2><ol class="timeline" aria-labelledby="timeline-h">'
        "{events}</ol>",
        code=case["code"],
        item=case["item"],
        item_name=case["item_name"],
        site=case.get("site_name", case["site"]),
        state=case["state"],
        label=case["state_label"],
        created=case["created_at"],
        accepted=case["accepted_at"] or "—",
        deadline=case["deadline"] or "受理后确定",
        finished=case["finished_at"] or "—",
        given=given,
        events=events,
    )


def case_page(v: View, case: dict[str, Any]) -> Markup:
    parts = [_case_facts(case)]
    code = case["code"]
    if case.get("mine") and case["state"] == "needs_material":
        parts.append(
            h(
                '<h2 id="supplement-h">补正材料</h2>'
                '<form method="post" action="/cases/{code}/supplement" class="stack">{csrf}'
                '<label for="note">补正说明</label>'
                '<textarea id="note" name="note" rows="3" maxlength="500"></textarea>'
                '<p><button type="submit">提交补正</button></p></form>',
                code=code,
                csrf=csrf_field(v),
            )
        )
    rating = case.get("rating")
    if rating:
        parts.append(
            h(
                '<h2 id="rating-h">我的评价</h2><p id="my-rating">{score} 分（{label}）{c}</p>',
                score=rating["score"],
                label=SCORE_LABELS.get(rating["score"], ""),
                c=h("：{}", rating["comment"]) if rating["comment"] else "",
            )
        )
    elif case.get("mine") and case["state"] in FINAL_STATES:
        scores = join(
            h(
                '<label><input type="radio" name="score" value="{s}" required> {s} 分 {label}'
                "</label>",
                s=s,
                label=label,
            )
            for s, label in SCORE_LABELS.items()
        )
        parts.append(
            h(
                '<h2 id="rating-h">好差评</h2><p>请对本次办理进行评价，您的意见将用于改进服务。</p>'
                '<form method="post" action="/cases/{code}/rating" class="stack">{csrf}'
                "<fieldset><legend>满意程度</legend>{scores}</fieldset>"
                '<label for="comment">意见建议（选填）</label>'
                '<textarea id="comment" name="comment" rows="3" maxlength="500"></textarea>'
                '<p><button type="submit">提交评价</button></p></form>',
                code=code,
                csrf=csrf_field(v),
                scores=scores,
            )
        )
    return layout(v, f"办件进度：{case['item_name']}", join(parts), status_title="办件进度")


# -- staff pages --------------------------------------------------------------------------------


def staff_home(v: View, roles: list[str], site: str, labels: list[str]) -> Markup:
    links = []
    if {"clerk", "backoffice"} & set(roles):
        links.append(h('<li><a href="/staff/queue">办件队列（窗口受理与审批）</a></li>'))
    if "supervisor" in roles:
        links.append(h('<li><a href="/staff/overdue">超期与预警办件（电子监察）</a></li>'))
    return layout(
        v,
        "工作台",
        h(
            "<p>站点：{site}。岗位：{roles}。</p><ul>{links}</ul>",
            site=site,
            roles="、".join(labels),
            links=join(links) if links else h("<li>您的岗位在本系统没有工作页面。</li>"),
        ),
    )


def queue_page(v: View, state: str, cases: list[dict[str, Any]], site: str) -> Markup:
    tabs = join(
        h(
            '<li><a href="/staff/queue?state={s}"{cur}>{label}</a></li>',
            s=s,
            cur=Markup(' aria-current="page"') if s == state else Markup(""),
            label=STATE_LABELS[s],
        )
        for s in STATES
    )
    rows = join(
        h(
            '<tr><td><a class="code" href="/staff/cases/{code}">{code}</a></td><td>{item}</td>'
            "<td>{at}</td><td>{deadline}</td></tr>",
            code=c["code"],
            item=c["item_name"],
            at=c["created_at"],
            deadline=c["deadline"] or "—",
        )
        for c in cases
    )
    table = (
        h(
            '<table><caption class="hint">按申请时间排列，最早的在前</caption><thead><tr>'
            '<th scope="col">办件编码</th><th scope="col">事项</th><th scope="col">申请时间</th>'
            '<th scope="col">承诺办结时间</th></tr></thead><tbody>{}</tbody></table>',
            rows,
        )
        if cases
        else h("<p>队列中暂无此状态的办件。</p>")
    )
    return layout(
        v,
        f"办件队列：{STATE_LABELS[state]}",
        h(
            '<p>站点 {site}</p><nav aria-label="按状态筛选"><ul class="links">{tabs}</ul></nav>'
            "{table}",
            site=site,
            tabs=tabs,
            table=table,
        ),
    )


def staff_case_page(v: View, case: dict[str, Any], roles: frozenset[str]) -> Markup:
    forms = []
    for action, (sources, _target, allowed) in ACTIONS.items():
        if case["state"] not in sources or not roles & allowed:
            continue
        confirm = (
            h(' data-confirm="确定{}此办件吗？"', ACTION_LABELS[action])
            if action in ("approve", "return")
            else Markup("")
        )
        forms.append(
            h(
                '<form method="post" action="/staff/cases/{code}/{action}" class="stack"{confirm}>'
                "{csrf}<h3>{label}</h3>"
                '<label for="comment-{action}">意见（选填）</label>'
                '<textarea id="comment-{action}" name="comment" rows="2" maxlength="500">'
                "</textarea>"
                '<p><button type="submit" class="{cls}" id="do-{action}">{label}</button></p>'
                "</form>",
                code=case["code"],
                action=action,
                confirm=confirm,
                csrf=csrf_field(v),
                label=ACTION_LABELS[action],
                cls="danger" if action == "return" else "",
            )
        )
    actions = (
        h('<h2 id="actions-h">办理</h2>{}', join(forms))
        if forms
        else h("<p>此办件当前没有您可以进行的操作。</p>")
    )
    return layout(
        v,
        f"办理办件：{case['item_name']}",
        h("{}{}", _case_facts(case), actions),
        status_title="办理办件",
    )


def overdue_page(
    v: View, region: str, overdue: list[dict[str, Any]], warning: list[dict[str, Any]]
) -> Markup:
    def table(rows: list[dict[str, Any]], caption: str) -> Markup:
        if not rows:
            return h("<p>无。</p>")
        body = join(
            h(
                '<tr><td><a class="code" href="/cases/{code}">{code}</a></td><td>{site}</td>'
                "<td>{item}</td><td>{accepted}</td><td>{deadline}</td></tr>",
                code=r["code"],
                site=r["site_name"],
                item=r["item_name"],
                accepted=r["accepted_at"],
                deadline=r["deadline"],
            )
            for r in rows
        )
        return h(
            '<table><caption class="hint">{}</caption><thead><tr><th scope="col">办件编码</th>'
            '<th scope="col">站点</th><th scope="col">事项</th><th scope="col">受理时间</th>'
            '<th scope="col">承诺办结时间</th></tr></thead><tbody>{}</tbody></table>',
            caption,
            body,
        )

    return layout(
        v,
        "超期与预警办件",
        h(
            "<p>监察范围：{region} 及其下级站点。</p>"
            '<h2 id="overdue-h">已超期（{n}）</h2>{t1}'
            '<h2 id="warning-h">即将超期（{m}）</h2>{t2}',
            region=region,
            n=len(overdue),
            m=len(warning),
            t1=table(overdue, "已超过承诺办结时间，按超期时间排列"),
            t2=table(warning, "临近承诺办结时间"),
        ),
    )


__all__ = ["View", "esc", "fmt_time"]
