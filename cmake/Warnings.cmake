# kvscope_warnings(target): the warning set every kvscope target compiles with.
function(kvscope_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
      -Wcast-align -Wunused -Woverloaded-virtual -Wdouble-promotion>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${KVSCOPE_WERROR}>>:-Werror>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>
    $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${KVSCOPE_WERROR}>>:-Werror=all-warnings>)
endfunction()
