@echo off
rem Install sam3-api's dependencies into .venv (Windows mirror of setup.sh). Install only: start_server.bat runs it.
rem
rem   setup.bat           runtime dependencies (requirements.txt)
rem   setup.bat --dev     plus the test dependencies (requirements-dev.txt)
rem   setup.bat --force   run pip even when nothing changed
rem
rem Idempotent and fast: a stamp in .venv records the sha256 of the requirement files (and the Python version);
rem while they are unchanged pip is not run. Set PYTHON=C:\path\to\python.exe to choose the interpreter.
rem Note: torch from PyPI is CPU-only on Windows; see the README for a CUDA build.
setlocal EnableExtensions DisableDelayedExpansion
cd /d "%~dp0"

set "DEV=0"
set "FORCE=0"
:parse_args
if "%~1"=="" goto args_done
if /i "%~1"=="--dev" (
    set "DEV=1"
    shift
    goto parse_args
)
if /i "%~1"=="--force" (
    set "FORCE=1"
    shift
    goto parse_args
)
echo setup.bat: unknown option "%~1" (use --dev or --force) 1>&2
exit /b 2
:args_done

set "VPY=.venv\Scripts\python.exe"
set "VERSION_CHECK=import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)"

rem --- the virtual environment ---------------------------------------------------------------------
if not exist ".venv\" goto create_venv
"%VPY%" -c "%VERSION_CHECK%" >nul 2>&1
if not errorlevel 1 goto venv_ready
if not exist ".venv\pyvenv.cfg" (
    echo setup.bat: .venv exists but is not a virtual environment; move it away and run again 1>&2
    exit /b 1
)
echo [setup] .venv exists but its Python does not run; recreating it
rmdir /s /q .venv

:create_venv
set "PYCMD="
rem No ( ) blocks around the PYTHON path: one like "C:\Program Files (x86)\..." would end the block early.
if not defined PYTHON goto find_python
"%PYTHON%" -c "%VERSION_CHECK%" >nul 2>&1
if errorlevel 1 goto bad_python
set "PYCMD="%PYTHON%""
goto have_python
:bad_python
echo setup.bat: PYTHON="%PYTHON%" is not a working Python ^>= 3.10 1>&2
exit /b 1

:find_python
rem 3.11 is the version the pins were tested with; the others are accepted.
for %%V in (3.11 3.12 3.13 3.10) do (
    if not defined PYCMD (
        py -%%V -c "%VERSION_CHECK%" >nul 2>&1 && set "PYCMD=py -%%V"
    )
)
if defined PYCMD goto have_python
python -c "%VERSION_CHECK%" >nul 2>&1 && set "PYCMD=python"
if defined PYCMD goto have_python
echo setup.bat: no Python ^>= 3.10 found (3.11 recommended). Install it from python.org, or set PYTHON=C:\path\to\python.exe 1>&2
exit /b 1

:have_python
echo [setup] creating .venv with %PYCMD%
%PYCMD% -m venv .venv
if errorlevel 1 (
    echo setup.bat: creating the virtual environment failed 1>&2
    exit /b 1
)

:venv_ready
rem --- stamps: skip pip when the requirement files are unchanged -----------------------------------------
rem stampcheck MODE STAMP FILES...: MODE=check exits 0 when STAMP holds the digest of FILES; MODE=write stores it.
set "STAMP_PY=import hashlib, sys, pathlib; mode, stamp, names = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]; h = hashlib.sha256(sys.version.encode()); [h.update(n.encode() + b'\0' + open(n, 'rb').read()) for n in names]; d = h.hexdigest(); ok = stamp.is_file() and stamp.read_text().strip() == d; stamp.write_text(d + '\n') if mode == 'write' else None; sys.exit(0 if (ok or mode == 'write') else 1)"
set "RUNTIME_STAMP=.venv\.sam3-api-requirements.sha256"
set "DEV_STAMP=.venv\.sam3-api-requirements-dev.sha256"

if "%DEV%"=="1" (
    set "STAMP=%DEV_STAMP%"
    set "REQ=requirements-dev.txt"
    set "DIGEST_FILES=requirements.txt requirements-no-deps.txt requirements-dev.txt"
    set "WHAT=runtime + dev"
) else (
    set "STAMP=%RUNTIME_STAMP%"
    set "REQ=requirements.txt"
    set "DIGEST_FILES=requirements.txt requirements-no-deps.txt"
    set "WHAT=runtime"
)

if "%FORCE%"=="1" goto install
"%VPY%" -c "%STAMP_PY%" check "%STAMP%" %DIGEST_FILES%
if errorlevel 1 goto install
echo [setup] %WHAT% dependencies in .venv are up to date (requirement files unchanged); nothing to do
exit /b 0

:install
echo [setup] upgrading pip in .venv
"%VPY%" -m pip install --upgrade pip
if errorlevel 1 exit /b 1
echo [setup] installing %WHAT% dependencies: pip install -r %REQ%
"%VPY%" -m pip install -r %REQ%
if errorlevel 1 (
    echo setup.bat: pip install failed; fix the error above and run setup.bat again 1>&2
    exit /b 1
)
echo [setup] installing requirements-no-deps.txt without their dependencies
"%VPY%" -m pip install --no-deps -r requirements-no-deps.txt
if errorlevel 1 (
    echo setup.bat: pip install --no-deps -r requirements-no-deps.txt failed; fix the error above and run setup.bat again 1>&2
    exit /b 1
)

rem Written only after pip succeeded; a dev install also satisfies a runtime one.
"%VPY%" -c "%STAMP_PY%" write "%RUNTIME_STAMP%" requirements.txt requirements-no-deps.txt
if "%DEV%"=="1" "%VPY%" -c "%STAMP_PY%" write "%DEV_STAMP%" requirements.txt requirements-no-deps.txt requirements-dev.txt

"%VPY%" -c "import torch; print('[setup] torch', torch.__version__, '; CUDA GPU:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none (the server will run on CPU)')"
echo [setup] done. Start the server with start_server.bat
exit /b 0
