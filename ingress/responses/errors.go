package responses

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Error is a client error in OpenAI's shape: the HTTP status, the error
// type, a machine-readable code (invalid_type, invalid_value,
// missing_required_parameter, integer_below_min_value, unsupported_value,
// ...), the offending parameter's path (input[0].content[1].image_url)
// and a message. Messages never quote the value that was sent: a value
// may be data, and errors are logged.
type Error struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
}

func (e *Error) Error() string { return e.Message }

func newError(code, param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: code, Param: param,
		Message: fmt.Sprintf(format, args...)}
}

func invalidType(p, expected string, got gjson.Result) *Error {
	return newError("invalid_type", p, "Invalid type for '%s': expected %s, but got %s instead.", p, expected, jsonKind(got))
}

func missing(p string) *Error {
	return newError("missing_required_parameter", p, "Missing required parameter: '%s'.", p)
}

// unsupported refuses a documented value the gateway cannot serve: the
// message says why.
func unsupported(p, format string, args ...any) *Error {
	return newError("unsupported_value", p, "Unsupported value for '%s': %s", p, fmt.Sprintf(format, args...))
}

func rangeError(p, code, what, op, bound string) *Error {
	return newError(code, p, "Invalid '%s': %s. Expected a value %s %s.", p, what, op, bound)
}

func wantString(p string, v gjson.Result) *Error {
	if v.Type != gjson.String {
		return invalidType(p, "a string", v)
	}
	return nil
}

func wantBool(p string, v gjson.Result) *Error {
	if v.Type != gjson.True && v.Type != gjson.False {
		return invalidType(p, "a boolean", v)
	}
	return nil
}

func wantObject(p string, v gjson.Result) *Error {
	if !v.IsObject() {
		return invalidType(p, "an object", v)
	}
	return nil
}

func wantEnum(p string, v gjson.Result, values ...string) *Error {
	if err := wantString(p, v); err != nil {
		return err
	}
	for _, s := range values {
		if v.Str == s {
			return nil
		}
	}
	return newError("invalid_value", p, "Invalid value for '%s'. Supported values are: %s.", p, quoteList(values))
}

// wantInt checks an integer written as one (no fraction, no exponent)
// within [lo, hi], and returns it.
func wantInt(p string, v gjson.Result, lo, hi int64) (int64, *Error) {
	if v.Type != gjson.Number || strings.ContainsAny(v.Raw, ".eE") {
		return 0, invalidType(p, "an integer", v)
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	switch {
	case err != nil && strings.HasPrefix(v.Raw, "-"), err == nil && n < lo:
		return 0, rangeError(p, "integer_below_min_value", "integer below minimum value", ">=", strconv.FormatInt(lo, 10))
	case err != nil, n > hi:
		return 0, rangeError(p, "integer_above_max_value", "integer above maximum value", "<=", strconv.FormatInt(hi, 10))
	}
	return n, nil
}

// wantNumber checks a number within [lo, hi] and returns it.
func wantNumber(p string, v gjson.Result, lo, hi float64) (float64, *Error) {
	if v.Type != gjson.Number {
		return 0, invalidType(p, "a number", v)
	}
	f := v.Float()
	switch {
	case f < lo:
		return 0, rangeError(p, "decimal_below_min_value", "decimal below minimum value", ">=", strconv.FormatFloat(lo, 'g', -1, 64))
	case f > hi:
		return 0, rangeError(p, "decimal_above_max_value", "decimal above maximum value", "<=", strconv.FormatFloat(hi, 'g', -1, 64))
	}
	return f, nil
}

// eachMember calls f with each member of the object v that is not null,
// stopping at f's first error. v must be an object.
func eachMember(p string, v gjson.Result, f func(k, mp string, x gjson.Result) *Error) *Error {
	if !v.IsObject() {
		return invalidType(p, "an object", v)
	}
	var err *Error
	v.ForEach(func(k, x gjson.Result) bool {
		if x.Type == gjson.Null {
			return true
		}
		err = f(k.Str, join(p, k.Str), x)
		return err == nil
	})
	return err
}

// eachElement calls f with each element of the array v and its path,
// stopping at f's first error. v must be an array.
func eachElement(p string, v gjson.Result, f func(ep string, x gjson.Result) *Error) *Error {
	if !v.IsArray() {
		return invalidType(p, "an array", v)
	}
	var err *Error
	i := 0
	v.ForEach(func(_, x gjson.Result) bool {
		err = f(p+"["+strconv.Itoa(i)+"]", x)
		i++
		return err == nil
	})
	return err
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

func quoteList(values []string) string {
	var sb strings.Builder
	for i, s := range values {
		switch {
		case i == 0:
		case i == len(values)-1 && i == 1:
			sb.WriteString(" and ")
		case i == len(values)-1:
			sb.WriteString(", and ")
		default:
			sb.WriteString(", ")
		}
		sb.WriteString("'" + s + "'")
	}
	return sb.String()
}

// jsonKind names the type of v as OpenAI's messages do.
func jsonKind(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return "a string"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Null:
		return "null"
	case gjson.Number:
		if strings.ContainsAny(v.Raw, ".eE") {
			return "a decimal"
		}
		return "an integer"
	}
	if v.IsArray() {
		return "an array"
	}
	return "an object"
}
