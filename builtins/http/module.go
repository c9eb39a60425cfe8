// Package http is require("shipit.http"): HTTP requests from the machine
// that runs shipit (deploy notifications, webhooks). The logic lives in
// internal/webhook; this is the Lua binding.
package http

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/webhook"
	"github.com/shipit-dev/shipit/runtime"
)

const optsType = "{headers?: table<string, string>, timeout?: number|string, json?: boolean}"
const respType = "{status: integer, body: string, headers: table<string, string>, json: any}"

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.http", Open: open,
		Doc: "HTTP requests from the machine running shipit (notifications, webhooks). A URL or header value \"secret:NAME\" is the stage's secret NAME, never shown in messages.",
		Funcs: []runtime.Func{
			{Name: "get", Args: "url: string, opts?: " + optsType, Returns: respType,
				Doc: "GETs url and returns the answer (headers with lower-case names; json: the decoded body when opts.json and the answer is JSON). " +
					"Raises on a status outside 200-299 or no answer, naming the host, the URL and the status with the answer's first line. " +
					"opts.timeout: seconds or \"5s\" (default 10s); Ctrl-C aborts the request."},
			{Name: "post", Args: "url: string, body?: string|table, opts?: " + optsType, Returns: respType,
				Doc: "POSTs body (a string; with opts.json = true a table, sent as JSON with Content-Type application/json) and returns the answer as http.get does. " +
					"The stage's secret values in the body are replaced by ***, as in everything shipit prints."},
		}})
}

// client is shared by every state: it holds connections only.
var client = &webhook.Client{}

type options struct {
	Headers map[string]string `lua:"headers"`
	Timeout time.Duration     `lua:"timeout"`
	JSON    bool              `lua:"json"`
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"get": func(L *lua.LState) int {
			url := L.CheckString(1)
			var o options
			runtime.Options(L, 2, &o)
			return do(L, "GET", url, nil, o)
		},
		"post": func(L *lua.LState) int {
			url := L.CheckString(1)
			var o options
			runtime.Options(L, 3, &o)
			// Secret values never leave in a body (they cannot get there
			// but through an error text or a command's output).
			redact := runtime.StateOf(L).Env.Redact
			var body []byte
			switch v := L.Get(2).(type) {
			case *lua.LNilType:
			case lua.LString:
				body = []byte(v)
				if redact != nil {
					body = []byte(redact(string(v)))
				}
			case *lua.LTable:
				if !o.JSON {
					L.ArgError(2, "a table body is sent as JSON: pass opts {json = true} (or give the body as a string)")
				}
				var b bytes.Buffer
				enc := stdjson.NewEncoder(&b)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(webhook.RedactValue(runtime.FromLua(v), redact)); err != nil {
					L.ArgError(2, "cannot encode the body as JSON: "+err.Error())
				}
				body = bytes.TrimRight(b.Bytes(), "\n")
			default:
				L.ArgError(2, "expected a string or a table (with opts.json = true), got a "+v.Type().String())
			}
			if body == nil {
				body = []byte{}
			}
			return do(L, "POST", url, body, o)
		},
	})
}

func do(L *lua.LState, method, url string, body []byte, o options) int {
	st := runtime.StateOf(L)
	req := webhook.Request{Method: method, URL: url, Headers: o.Headers, Body: body, JSON: o.JSON, Timeout: o.Timeout, Stage: st.Env.Stage}
	c := *client
	c.Secrets, c.SecretsErr = st.Env.Secrets, st.Env.SecretsErr
	ctx := L.Context()
	if h := st.Host; h != nil {
		req.Host = h.Name
		ctx = h.Context()
		h.Emit(runtime.Event{Kind: runtime.Command, Text: "http " + method + " " + webhook.Display(url)})
	}
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := c.Do(ctx, req)
	if err != nil {
		return runtime.Raise(L, err)
	}
	L.Push(runtime.ToLua(L, res))
	return 1
}
