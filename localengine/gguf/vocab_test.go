package gguf

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVocab(t *testing.T) {
	for _, n := range []int{MinVocab, 300, Tiny.Vocab, 1000, Bench.Vocab, 100000} {
		voc, err := newVocab(n)
		require.NoError(t, err)
		require.Len(t, voc.tokens, n)
		require.Len(t, voc.scores, n)
		require.Len(t, voc.types, n)

		index := make(map[string]int, n)
		for i, tok := range voc.tokens {
			_, dup := index[tok]
			require.False(t, dup, "duplicate token %q", tok)
			index[tok] = i
		}
		require.Equal(t, int32(2), voc.types[TokenUnknown])
		for _, id := range []int{TokenBOS, TokenEOS, TokenIMStart, TokenIMEnd} {
			require.Equal(t, int32(3), voc.types[id])
		}
		require.Equal(t, "<0x0A>", voc.tokens[FirstByteToken+'\n'])
		require.Equal(t, "▁", voc.tokens[FirstPieceToken])
		for i := FirstByteToken; i < FirstPieceToken; i++ {
			require.Equal(t, int32(6), voc.types[i])
		}
		for i := FirstPieceToken; i < n; i++ {
			tok := voc.tokens[i]
			require.Equal(t, int32(1), voc.types[i], tok)
			// Every multi-character piece is reachable by SentencePiece
			// merges: the piece minus its last character comes earlier.
			if r := []rune(tok); len(r) > 1 {
				prefix := string(r[:len(r)-1])
				j, ok := index[prefix]
				require.True(t, ok, "prefix %q of %q missing", prefix, tok)
				require.Less(t, j, i)
				require.Greater(t, voc.scores[i], voc.scores[j], "longer pieces score higher")
				if strings.HasPrefix(tok, "▁") {
					_, ok := index[string(r[len(r)-1])]
					require.True(t, ok, "last character of %q", tok)
				}
			}
		}
	}
	_, err := newVocab(MinVocab - 1)
	require.Error(t, err)
}

func TestVocabTinyContents(t *testing.T) {
	voc, err := newVocab(Tiny.Vocab)
	require.NoError(t, err)
	has := map[string]bool{}
	for _, tok := range voc.tokens {
		has[tok] = true
	}
	for _, c := range "abcxyzABCXYZ0189.,!?'\"()-:;/~" {
		require.True(t, has[string(c)], "bare %q", c)
		require.True(t, has["▁"+string(c)], "▁%q", c)
	}
	for _, w := range []string{"▁hello", "▁world", "▁the", "▁and"} {
		require.True(t, has[w], w)
	}
}
