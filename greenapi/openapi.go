package greenapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/portrait-dev/portrait"
)

// The API reference is generated from the method table (routes.go) and the
// request and reply types the handlers write (types.go), so that it cannot
// drift from what the server does: the end-to-end tests validate every reply
// they receive against it.

var (
	openAPIOnce sync.Once
	openAPIDoc  []byte
)

// OpenAPI returns the OpenAPI 3.1 document of the GREEN-API methods
// portrait serves, and of its own routes for avatars and health.
func OpenAPI() []byte {
	openAPIOnce.Do(func() {
		b, err := json.MarshalIndent(openAPIDocument(), "", "  ")
		if err != nil {
			panic("greenapi: encoding the OpenAPI document: " + err.Error())
		}
		openAPIDoc = b
	})
	return openAPIDoc
}

type obj = map[string]any

func openAPIDocument() obj {
	paths := obj{}
	for _, m := range Methods {
		for _, form := range []struct {
			t      portrait.InstanceType
			prefix string
			tag    string
		}{{portrait.TypeWhatsApp, "", "WhatsApp"}, {portrait.TypeMAX, "/v3", "MAX"}} {
			if !m.serves(form.t) {
				continue
			}
			path := form.prefix + "/waInstance{idInstance}/" + m.Name + "/{apiTokenInstance}"
			params := []any{
				obj{"name": "idInstance", "in": "path", "required": true, "schema": obj{"type": "integer"}, "description": "the instance's id"},
				obj{"name": "apiTokenInstance", "in": "path", "required": true, "schema": obj{"type": "string"}, "description": "the instance's token"},
			}
			if m.Extra {
				path += "/{receiptId}"
				params = append(params, obj{"name": "receiptId", "in": "path", "required": true, "schema": obj{"type": "integer"}})
			}
			if m.Name == "receiveNotification" {
				params = append(params, obj{"name": "receiveTimeout", "in": "query", "schema": obj{"type": "integer", "minimum": minReceiveTimeout, "maximum": maxReceiveTimeout}})
			}
			item := obj{"parameters": params}
			for _, verb := range m.Verbs {
				if verb == http.MethodHead {
					continue
				}
				item[strings.ToLower(verb)] = operation(m, form.tag, verb)
			}
			paths[path] = item
		}
	}
	paths["/avatars/{file}"] = obj{"get": obj{
		"summary":    "A stored picture at its stable URL: {key}.jpg (640×640) or {key}-96.jpg (96×96)",
		"tags":       []any{"Avatars"},
		"parameters": []any{obj{"name": "file", "in": "path", "required": true, "schema": obj{"type": "string"}}},
		"responses": obj{
			"200": obj{"description": "the picture", "content": obj{"image/jpeg": obj{"schema": obj{"type": "string", "format": "binary"}}}},
			"404": errorResponse(),
		},
	}}
	status := obj{"type": "object", "properties": obj{"status": obj{"type": "string"}, "reason": obj{"type": "string"}}, "required": []any{"status"}}
	paths["/healthz"] = obj{"get": obj{"summary": "The process serves HTTP", "tags": []any{"Operations"},
		"responses": obj{"200": jsonResponse("serving", status)}}}
	paths["/readyz"] = obj{"get": obj{"summary": "The server can do its work: its store and data directory accept writes", "tags": []any{"Operations"},
		"responses": obj{"200": jsonResponse("ready", status), "503": jsonResponse("not ready, with the reason", status)}}}
	return obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":       "portrait",
			"version":     "1",
			"description": "GREEN-API's avatar methods and their instance framework, as portrait serves them: WhatsApp instances under /waInstance…, MAX instances under /v3/waInstance…. Method names match case-insensitively. Every reply carries X-Request-Id; errors have GREEN-API's shape.",
		},
		"paths": paths,
		"components": obj{"schemas": obj{
			"Error": obj{"type": "object", "required": []any{"statusCode", "timestamp", "path", "message"}, "properties": obj{
				"statusCode": obj{"type": "integer"}, "timestamp": obj{"type": "string"}, "path": obj{"type": "string"}, "message": obj{"type": "string"},
			}},
			"AuthError": obj{"type": "object", "required": []any{"code", "description"}, "properties": obj{
				"code": obj{"type": "integer"}, "description": obj{"type": "string"},
			}},
		}},
	}
}

// operation describes one verb of a method.
func operation(m *Method, tag, verb string) obj {
	op := obj{"operationId": tag + "_" + m.Name + "_" + verb, "tags": []any{tag}, "summary": m.Name}
	if m.Request != nil && verb == http.MethodPost {
		op["requestBody"] = requestBody(m.Request)
	}
	ok := obj{"description": "success"}
	if m.Reply != nil {
		schema := schemaOf(reflect.TypeOf(m.Reply))
		if m.Name == "receiveNotification" {
			schema = obj{"anyOf": []any{schema, obj{"type": "null"}}} // null when nothing arrived in time
		}
		ok["content"] = obj{"application/json": obj{"schema": schema}}
	}
	responses := obj{"200": ok}
	for _, code := range []string{"400", "404", "405", "413", "422", "429", "500", "502", "503", "504"} {
		responses[code] = errorResponse()
	}
	for _, code := range []string{"401", "403"} {
		responses[code] = obj{"description": "authentication failed", "content": obj{"application/json": obj{"schema": obj{"$ref": "#/components/schemas/AuthError"}}}}
	}
	op["responses"] = responses
	return op
}

func errorResponse() obj {
	return obj{"description": "an error, in GREEN-API's shape", "content": obj{"application/json": obj{"schema": obj{"$ref": "#/components/schemas/Error"}}}}
}

func jsonResponse(desc string, schema obj) obj {
	return obj{"description": desc, "content": obj{"application/json": obj{"schema": schema}}}
}

// requestBody describes a method's body: JSON, or a multipart form for the
// upload types (which also take JSON naming the picture by URL).
func requestBody(v any) obj {
	t := reflect.TypeOf(v)
	switch v.(type) {
	case pictureUpload, groupPictureUpload:
		byURL := schemaOf(reflect.TypeOf(pictureByURL{}))
		return obj{"required": true, "content": obj{
			"multipart/form-data": obj{"schema": schemaOf(t)},
			"application/json":    obj{"schema": byURL},
		}}
	}
	return obj{"content": obj{"application/json": obj{"schema": schemaOf(t)}}}
}

var rawMessage = reflect.TypeOf(json.RawMessage(nil))

// schemaOf is the JSON Schema of a Go type as encoding/json writes it (or,
// for a struct with `form` tags, as a multipart form carries it). Fields
// without omitempty are required: a reply always has them.
func schemaOf(t reflect.Type) obj {
	if t == rawMessage {
		return obj{} // any JSON value
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner := schemaOf(t.Elem())
		return obj{"anyOf": []any{inner, obj{"type": "null"}}}
	case reflect.String:
		return obj{"type": "string"}
	case reflect.Bool:
		return obj{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return obj{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return obj{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return obj{"type": "string", "format": "binary"}
		}
		return obj{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return obj{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := obj{}
		required := []any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, tagged := strings.Cut(f.Tag.Get("json"), ",")
			if !tagged && name == "" {
				if form := f.Tag.Get("form"); form != "" {
					name = form
				}
			}
			if name == "-" || name == "" {
				continue
			}
			props[name] = schemaOf(f.Type)
			if !strings.Contains(opts, "omitempty") && f.Tag.Get("form") == "" {
				required = append(required, name)
			}
		}
		s := obj{"type": "object", "properties": props}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return obj{}
}

// serveOpenAPI serves the document.
func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	writeRaw(w, http.StatusOK, OpenAPI())
}
