package bench

import "encoding/json"

// The raw contenders encode with the same codec as catga's default.
var (
	jsonMarshal   = json.Marshal
	jsonUnmarshal = json.Unmarshal
)
